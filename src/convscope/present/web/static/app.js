// The explorer page: state, events and keyboard navigation.
import { channelAt, fmt, getJSON, loadImage, upload, url } from "./api.js";
import { LayerList } from "./layers.js";
import {
  fillSelect, gridMetaText, markImage, renderChannelLabels, renderGallery, renderLegend, renderPrediction, renderStats,
} from "./views.js";

const $ = (sel) => document.querySelector(sel);
const state = {
  model: null, images: [], image: null, layer: null, view: "maps",
  compare: { image: null, layer: null }, metas: {}, channel: null, busy: 0, camTarget: null, list: null,
};
const panes = { a: $("#pane-a"), b: $("#pane-b") };
const tokens = { a: 0, b: 0 };

function toast(message) {
  const box = $("#toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

async function busy(work) {
  state.busy += 1;
  $("#busy").hidden = false;
  try { return await work(); } catch (e) { toast(e.message); return null; } finally {
    state.busy -= 1;
    $("#busy").hidden = state.busy === 0;
  }
}

function viewable() { return state.model.layers.filter((r) => r.viewable); }

// How far the bottom of a pane's picture must stay above the window's: room for the colorbar.
const BELOW_PX = 56;

function channelSpec() {
  const order = $("#order").value;
  const n = Math.max(1, parseInt($("#count").value, 10) || 64);
  if (order === "list") return $("#list").value.trim();
  if (order.startsWith("top")) return `top${n}:${order.split(":")[1]}`;
  return String(n);
}

function gridParams(image, layer, box) {
  const aspect = box ? (box.width / box.height).toFixed(1) : null;
  return { image, layer, norm: $("#norm").value, cmap: $("#cmap").value, channels: channelSpec(), aspect };
}

// The screen area a pane's picture may fill: the frame's width, down to the bottom of the window.
function fitBox(which) {
  const frame = panes[which].querySelector(".frame");
  const height = Math.max(240, window.innerHeight - frame.getBoundingClientRect().top - BELOW_PX);
  return { width: Math.max(200, frame.clientWidth), height };
}

// Show a picture as large as fits the box, enlarged at most `most` times: a bare mosaic (its words are
// page text) may fill the box; a picture with words drawn in it grows by whole steps (1x or 2x), so its
// letters stay sharp. Returns the scale used.
function fit(img, box, most, whole = false) {
  let k = Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight, most);
  if (whole && k > 1) k = Math.floor(k);
  img.style.width = `${Math.max(1, Math.floor(img.naturalWidth * k))}px`;
  img.classList.toggle("smooth", k < 1);  // shrinking: average pixels instead of dropping them
  return k;
}

// -- drawing the panes ----------------------------------------------------------------------------------------
async function drawPane(which) {
  const pane = panes[which];
  const image = which === "a" ? state.image : state.compare.image;
  const layer = which === "a" ? state.layer : state.compare.layer;
  const img = pane.querySelector("img.grid");
  const meta = pane.querySelector(".meta");
  if (!image || !layer) return;
  const token = ++tokens[which];
  const view = which === "a" ? state.view : "maps";
  const box = fitBox(which);
  let src;
  let info = null;
  let text;
  if (view === "cam") {
    const typed = $("#cam-target").value.trim();
    const params = { image, method: $("#cam-method").value };
    const target = typed || (state.camTarget ?? "");
    if (target !== "") params.target = target;
    if ($("#cam-region").value.trim()) params.region = $("#cam-region").value.trim();
    info = await getJSON("/api/cam", params);
    src = url("/api/cam.png", params);
    const what = (info.explained || "class") === "class" ? `class ${info.class_name ?? "?"}` : `${info.explained}` +
      (String(info.explained).startsWith("seg") && info.class_name != null ? ` (${info.class_name})` : "");
    text = `${info.method} at ${info.layer || "?"} explaining ${what}` +
      (info.score === undefined ? "" : ` (${info.score_kind || "score"} ${fmt(info.score)})`) +
      " · click a predicted class to explain it instead";
  } else if (view === "filters") {
    info = await getJSON("/api/filters", { layer });
    src = url("/api/filters.png", { layer });
    text = `filters: ${info.caption.split(/ {2,}/).join(" · ")}`;
  } else {
    const params = gridParams(image, layer, box);
    info = await getJSON("/api/grid", params);
    src = url("/api/grid.png", params);
    text = gridMetaText(info);
  }
  if (token !== tokens[which]) return;
  await loadImage(img, src);
  if (token !== tokens[which]) return;
  const bare = Boolean(view === "maps" && info.labels === false);
  const k = fit(img, box, bare ? 8 : view === "cam" ? 3 : 2, !bare && view !== "cam");
  state.metas[which] = view === "maps" ? info : null;
  renderChannelLabels(pane.querySelector(".chan-labels"), bare ? info : null, bare && info.geometry ? info.geometry.cell_w * k : 0);
  renderLegend(pane.querySelector(".legend"), bare || view !== "maps" ? info.legend : null);
  img.classList.toggle("clickable", Boolean(view === "maps" && info.geometry));
  img.dataset.layer = layer;
  img.dataset.image = image;
  img.dataset.view = view;
  pane.dataset.ready = "true";
  meta.textContent = text;
  if (which === "a") pane.querySelector(".pane-title").textContent = `${imageName(image)} · ${view === "cam" ? "class activation" : layer}`;
}

// A stack's slice k is the image id "<id>~k" (the server addresses every view by it).
function baseOf(id) { return id ? id.split("~")[0] : id; }

function imageName(id) {
  const im = state.images.find((i) => i.id === baseOf(id));
  const name = im ? im.name : id;
  return id && id.includes("~") ? `${name} · slice ${id.split("~")[1]}` : name;
}

function redraw() {
  return busy(async () => {
    const jobs = [drawPane("a")];
    if ($("#compare").checked) jobs.push(drawPane("b"));
    await Promise.all(jobs);
  });
}

async function showPrediction() {
  if (!state.image) return;
  const pred = await getJSON("/api/predict", { image: state.image });
  if (pred.image === state.image) renderPrediction($("#top5"), $("#pred-note"), pred, state.model.features.cam ? explainClass : null);
}

// -- selection ------------------------------------------------------------------------------------------------
function pickLayer(key) {
  state.layer = key;
  state.list.mark(key);
  document.body.dataset.layer = key;
  updateTabs();  // the filters tab exists only for layers with kernels
  redraw();
}

function explainClass(index) {
  state.camTarget = index;
  $("#cam-target").value = "";
  state.view = "cam";
  updateTabs();
  redraw();
}

function pickImage(id) {
  const im = state.images.find((i) => i.id === baseOf(id));
  if (im && im.slices > 1 && !id.includes("~")) id = `${id}~${Math.floor(im.slices / 2)}`;
  state.image = id;
  state.camTarget = null;
  markImage($("#gallery"), baseOf(id));
  showSlider(im, id);
  busy(showPrediction);
  redraw();
}

function showSlider(im, id) {
  const on = Boolean(im && im.slices > 1);
  $("#slice-bar").hidden = !on;
  if (!on) return;
  const k = parseInt(id.split("~")[1], 10);
  $("#slice").max = String(im.slices - 1);
  $("#slice").value = String(k);
  $("#slice-num").textContent = `${k} / ${im.slices - 1}`;
}

function step(list, current, delta) {
  const i = list.indexOf(current);
  return list[Math.min(list.length - 1, Math.max(0, (i < 0 ? 0 : i) + delta))];
}

function updateTabs() {
  const row = state.model.layers.find((r) => r.key === state.layer);
  const tabs = { maps: true, cam: state.model.features.cam, filters: state.model.features.filters && row && row.has_filters };
  if (!tabs[state.view]) state.view = "maps";
  for (const b of document.querySelectorAll("#tabs button")) {
    b.hidden = !tabs[b.dataset.view];
    b.setAttribute("aria-selected", b.dataset.view === state.view ? "true" : "false");
  }
  $("#cam-method-label").hidden = state.view !== "cam";
  for (const node of document.querySelectorAll(".maps-only")) node.hidden = state.view !== "maps";
}

// -- the channel dialog ---------------------------------------------------------------------------------------
async function openChannel(which, channel) {
  const img = panes[which].querySelector("img.grid");
  state.channel = { image: img.dataset.image, layer: img.dataset.layer, channel, which };
  const dialog = $("#channel-dialog");
  if (!dialog.open) dialog.showModal();
  await busy(drawChannel);
}

async function drawChannel() {
  const c = state.channel;
  const params = { image: c.image, layer: c.layer, channel: c.channel, alpha: $("#ch-alpha").value };
  const stats = await getJSON("/api/channel", params);
  await loadImage($("#ch-img"), url("/api/channel.png", params));
  const img = $("#ch-img");
  img.style.width = img.naturalWidth < 400 ? `${img.naturalWidth * 2}px` : "";
  $("#ch-title").textContent = `${c.layer} · channel ${c.channel} of ${stats.n_channels} · ${imageName(c.image)}`;
  renderStats($("#ch-stats"), stats);
  renderLegend($("#ch-legend"), stats.legend);
  $("#channel-dialog").dataset.channel = String(c.channel);
}

function stepChannel(delta) {
  const meta = state.metas[state.channel.which];
  const shown = meta ? meta.channels : [];
  const i = shown.indexOf(state.channel.channel);
  if (i < 0 || !shown.length) return;
  state.channel.channel = shown[(i + delta + shown.length) % shown.length];
  busy(drawChannel);
}

// -- uploads --------------------------------------------------------------------------------------------------
async function uploadFiles(files) {
  let last = null;
  await busy(async () => {
    for (const file of files) {
      try { last = await upload(file); } catch (e) { toast(`${file.name}: ${e.message}`); }
    }
  });
  if (!last) return;
  await refreshImages();
  pickImage(last.id);
}

async function refreshImages() {
  state.images = (await getJSON("/api/images")).images;
  renderGallery($("#gallery"), state.images, pickImage);
  markImage($("#gallery"), baseOf(state.image));
  fillSelect(document.querySelector("#pane-b .pick-image"), state.images.map((i) => [i.id, i.name]), state.compare.image);
}

// -- wiring ---------------------------------------------------------------------------------------------------
function wire() {
  for (const id of ["#norm", "#cmap", "#count", "#list", "#cam-method", "#cam-target", "#cam-region"]) $(id).addEventListener("change", redraw);
  $("#slice").addEventListener("input", () => pickImage(`${baseOf(state.image)}~${$("#slice").value}`));
  $("#order").addEventListener("change", () => {
    $("#list").hidden = $("#order").value !== "list";
    $("#count").hidden = $("#order").value === "list";
    redraw();
  });
  $("#compare").addEventListener("change", () => {
    panes.b.hidden = !$("#compare").checked;
    document.body.classList.toggle("comparing", $("#compare").checked);
    if ($("#compare").checked) {
      state.compare.image = state.compare.image || step(state.images.map((i) => i.id), state.image, 1);
      state.compare.layer = state.compare.layer || state.layer;
      panes.b.querySelector(".pick-image").value = state.compare.image;
      panes.b.querySelector(".pick-layer").value = state.compare.layer;
    }
    redraw();
  });
  panes.b.querySelector(".pick-image").addEventListener("change", (e) => { state.compare.image = e.target.value; busy(() => drawPane("b")); });
  panes.b.querySelector(".pick-layer").addEventListener("change", (e) => { state.compare.layer = e.target.value; busy(() => drawPane("b")); });
  for (const b of document.querySelectorAll("#tabs button")) {
    b.addEventListener("click", () => { state.view = b.dataset.view; updateTabs(); redraw(); });
  }
  for (const which of ["a", "b"]) {
    const img = panes[which].querySelector("img.grid");
    const at = (e) => channelAt(state.metas[which], e.offsetY * img.naturalHeight / img.clientHeight,
      e.offsetX * img.naturalWidth / img.clientWidth);
    img.addEventListener("click", (e) => {
      const ch = img.dataset.view === "maps" ? at(e) : null;
      if (ch !== null) openChannel(which, ch);
    });
    img.addEventListener("mousemove", (e) => {
      const ch = img.dataset.view === "maps" ? at(e) : null;
      img.title = ch === null ? "" : `channel ${ch}: click to open it over the input`;
    });
  }
  $("#ch-close").addEventListener("click", () => $("#channel-dialog").close());
  $("#ch-prev").addEventListener("click", () => stepChannel(-1));
  $("#ch-next").addEventListener("click", () => stepChannel(1));
  $("#ch-alpha").addEventListener("change", () => busy(drawChannel));
  $("#file-input").addEventListener("change", (e) => uploadFiles([...e.target.files]));
  const zone = $("#dropzone");
  document.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) zone.classList.remove("over"); });
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const files = [...(e.dataTransfer ? e.dataTransfer.files : [])];
    if (files.length) uploadFiles(files);
  });
  wireFilter();
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", () => {
    clearTimeout(wire.resizeTimer);
    wire.resizeTimer = setTimeout(redraw, 300);
  });
}

// The filter box over the layer list: typing filters; ↑/↓ step through the matches, Enter opens the
// first one, Esc clears.
function wireFilter() {
  const box = $("#layer-filter");
  const count = $("#layer-count");
  box.addEventListener("input", () => {
    const n = state.list.setFilter(box.value);
    count.hidden = n === null;
    count.textContent = n === null ? "" : `${n} match${n === 1 ? "" : "es"}`;
  });
  box.addEventListener("keydown", (e) => {
    const keys = state.list.navigable();
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (keys.length) pickLayer(keys.includes(state.layer) ? step(keys, state.layer, e.key === "ArrowDown" ? 1 : -1) : keys[0]);
    } else if (e.key === "Enter") {
      if (keys.length) pickLayer(keys.includes(state.layer) ? state.layer : keys[0]);
    } else if (e.key === "Escape") {
      box.value = "";
      box.dispatchEvent(new Event("input"));
      box.blur();
    } else return;
    e.preventDefault();
  });
}

function onKey(e) {
  if (e.target.closest && e.target.closest("input, select, textarea")) return;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if ($("#channel-dialog").open) {
    if (e.key === "ArrowLeft" || e.key === "h") stepChannel(-1);
    else if (e.key === "ArrowRight" || e.key === "l") stepChannel(1);
    else return;
    e.preventDefault();
    return;
  }
  if (e.key === "/") {
    $("#layer-filter").focus();
    e.preventDefault();
    return;
  }
  const keys = state.list.navigable();
  const ids = state.images.map((i) => i.id);
  const from = keys.includes(state.layer) ? state.layer : keys[0];
  if ((e.key === "ArrowDown" || e.key === "j") && keys.length) pickLayer(from === state.layer ? step(keys, from, 1) : from);
  else if ((e.key === "ArrowUp" || e.key === "k") && keys.length) pickLayer(from === state.layer ? step(keys, from, -1) : from);
  else if ((e.key === "ArrowRight" || e.key === "l") && ids.length) pickImage(step(ids, baseOf(state.image), 1));
  else if ((e.key === "ArrowLeft" || e.key === "h") && ids.length) pickImage(step(ids, baseOf(state.image), -1));
  else return;
  e.preventDefault();
}

async function start() {
  const model = await getJSON("/api/model");
  state.model = model;
  document.title = `convscope · ${model.title}`;
  $("#model-title").textContent = model.title;
  $("#model-facts").textContent = `${model.kind} · input ${JSON.stringify(model.input_shape)} · ${model.total_params.toLocaleString()} params`;
  $("#preprocess").textContent = model.preprocess;
  fillSelect($("#norm"), model.norms.map((n) => [n, n]), "channel");
  fillSelect($("#cmap"), model.cmaps.map((c) => [c, c]), "auto");
  fillSelect($("#cam-method"), model.features.cam_methods.map((m) => [m, m]));
  state.list = new LayerList($("#layers tbody"), model, pickLayer);
  const keys = viewable();
  fillSelect(document.querySelector("#pane-b .pick-layer"), keys.map((r) => [r.key, r.key]));
  wire();
  await refreshImages();
  state.layer = model.default_layer || (keys[0] ? keys[0].key : null);
  state.list.mark(state.layer);
  updateTabs();
  document.body.dataset.ready = "true";
  if (state.images.length) pickImage(state.images[0].id);
}

start().catch((e) => toast(`cannot start: ${e.message}`));
