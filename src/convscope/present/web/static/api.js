// Talking to the explorer's JSON + PNG API (same origin). Errors become Error(message) from the
// server's {"error": ...} answer.

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  }
  return q.toString();
}

export function url(path, params = {}) {
  const q = query(params);
  return q ? `${path}?${q}` : path;
}

async function answer(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) {
    const message = body && body.error ? body.error : `${response.status} ${response.statusText}`;
    const err = new Error(message);
    err.status = response.status;
    throw err;
  }
  return body;
}

export async function getJSON(path, params = {}) {
  return answer(await fetch(url(path, params)));
}

export async function upload(file) {
  const response = await fetch("/api/images", {
    method: "POST",
    headers: { "Content-Type": file.type || "application/octet-stream", "X-Filename": encodeURIComponent(file.name || "upload") },
    body: file,
  });
  return answer(response);
}

// Load an <img> from a URL and resolve once it is decoded (reject with the server's message).
export function loadImage(img, src) {
  return new Promise((resolve, reject) => {
    img.onload = () => resolve(img);
    img.onerror = async () => {
      try { await answer(await fetch(src)); reject(new Error(`cannot load ${src}`)); } catch (e) { reject(e); }
    };
    img.src = src;
  });
}

// The channel under picture pixel (y, x) of a grid, from the geometry the server sent (or null).
export function channelAt(meta, y, x) {
  const g = meta && meta.geometry;
  if (!g) return null;
  const row = Math.floor((y - g.top - g.sep) / g.cell_h);
  const col = Math.floor((x - g.left - g.sep) / g.cell_w);
  if (row < 0 || row >= g.rows || col < 0 || col >= g.cols) return null;
  const i = row * g.cols + col;
  return i < meta.channels.length ? meta.channels[i] : null;
}

function trimZeros(text) {
  return text.includes(".") && !text.includes("e") ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
}

export function fmt(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : trimZeros(v.toPrecision(3));
}

export function shape(s) {
  return s ? `(${s.map((d) => (d === null ? "N" : d)).join(", ")})` : "–";
}
