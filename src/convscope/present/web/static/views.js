// Building the page's pieces from API data. Text always goes through textContent (never innerHTML),
// so names from files and uploads cannot inject markup.
import { fmt, shape } from "./api.js";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

export function rfText(row) {
  if (!row.rf_size) return "–";
  const size = row.rf_size.join("×");
  return row.rf_exact === false ? `~${size}` : size;
}

export function layerTitle(row) {
  const parts = [`${row.path} (${row.class})`, `output ${shape(row.output_shape)}`, `${row.params.toLocaleString()} params`];
  if (row.kernel) parts.push(`kernel ${row.kernel.join("×")}, stride ${row.strides.join("×")}, ${row.padding}`);
  if (row.rf_size) parts.push(`receptive field ${row.rf_size.join("×")} px, jump ${row.rf_jump.join("×")}, start ${row.rf_start.join(",")}`);
  if (!row.viewable) parts.push("no activation of its own (container or never called)");
  return parts.join("\n");
}

export function renderGallery(box, images, onPick) {
  box.replaceChildren();
  if (!images.length) {
    box.append(el("p", { class: "dim empty" },
      "No images yet: drop image files anywhere on the page, or use the box on the right to choose files →"));
    return;
  }
  for (const im of images) {
    const label = im.slices > 1 ? `${im.name} (${im.slices} slices)` : im.name;
    const item = el("button", { type: "button", class: "thumb", role: "option", title: label, dataset: { id: im.id } },
      el("img", { src: `/api/images/${encodeURIComponent(im.id)}.png`, alt: im.name, loading: "lazy" }),
      el("span", {}, label));
    // Small pictures (digits) stay sharp when enlarged; photos are shrunk smoothly.
    const pic = item.querySelector("img");
    pic.addEventListener("load", () => pic.classList.toggle("pixels", pic.naturalWidth < 64));
    item.addEventListener("click", () => onPick(im.id));
    box.append(item);
  }
}

export function markImage(box, id) {
  for (const b of box.querySelectorAll(".thumb")) {
    const on = b.dataset.id === id;
    b.classList.toggle("selected", on);
    b.setAttribute("aria-selected", on ? "true" : "false");
    if (on) b.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
}

export function fillSelect(select, items, value) {
  select.replaceChildren(...items.map(([v, label]) => el("option", { value: v }, label)));
  if (value !== undefined) select.value = value;
}

export function renderPrediction(list, note, pred, onExplain) {
  list.replaceChildren();
  if (!pred.available) {
    note.textContent = pred.reason;
    return;
  }
  const peak = Math.max(...pred.top.map((t) => Math.abs(t.score)), 1e-12);
  for (const t of pred.top) {
    const share = pred.kind === "probability" || pred.kind === "pixels" ? t.score : Math.abs(t.score) / peak;
    const hit = pred.true_label !== null && pred.true_label !== undefined && t.index === pred.true_label;
    list.append(el("li", { class: hit ? "hit" : null, title: onExplain ? `show what drives class ${t.label}` : null },
      el("span", { class: "label", title: t.label }, t.label),
      el("span", { class: "bar" }, el("span", { class: "fill", style: null })),
      el("span", { class: "score" }, t.text)));
    list.lastChild.querySelector(".fill").style.width = `${Math.max(0.5, 100 * share)}%`;
    if (onExplain) {
      list.lastChild.classList.add("explain");
      list.lastChild.addEventListener("click", () => onExplain(t.index));
    }
  }
  const truth = pred.true_label !== null && pred.true_label !== undefined ? ` · true class ${pred.true_label}` : "";
  const what = pred.kind === "pixels" ? `share of pixels won, ${pred.n_classes} classes` : `${pred.kind} over ${pred.n_classes} classes`;
  const heads = (pred.heads || []).map((h) => `${h.name}: ${h.available ? h.headline : h.reason}`);
  note.textContent = (heads.length ? `output ${heads[0]} · ` : "") + what + truth + (heads.length > 1 ? ` · ${heads.slice(1).join(" · ")}` : "");
}

export function gridMetaText(meta) {
  const parts = [`${meta.layer} ${shape(meta.shape)}`, `norm ${meta.norm}`, `cmap ${meta.cmap}`,
    `range [${fmt(meta.value_range[0])}, ${fmt(meta.value_range[1])}]`];
  if (meta.tokens) parts.splice(1, 0, meta.tokens);
  if (meta.kind === "2d") parts.push(`${meta.channels.length} of ${meta.n_channels} channels`);
  if (meta.inactive.length) parts.push(`${meta.inactive.length} inactive (zero on this image)`);
  if (meta.n_nan || meta.n_inf) parts.push(`${meta.n_nan} NaN, ${meta.n_inf} Inf`);
  return parts.join(" · ");
}

export function renderStats(table, s) {
  const rows = [
    ["min", fmt(s.min)], ["max", fmt(s.max)], ["mean", fmt(s.mean)], ["std", fmt(s.std)],
    ["> 0", s.positive === null ? "–" : `${(100 * s.positive).toFixed(1)}%`],
    ["= 0", s.zero === null ? "–" : `${(100 * s.zero).toFixed(1)}%`],
    ["map size", s.map_shape.join("×")],
    ["peak at", s.argmax ? `(${s.argmax.join(", ")})` : "–"],
  ];
  if (s.peak_center) rows.push(["peak looks at", `input (${s.peak_center.map(fmt).join(", ")})`]);
  if (s.rf_size) rows.push(["receptive field", `${s.rf_size.join("×")} px`]);
  if (s.n_nan || s.n_inf) rows.push(["NaN / Inf", `${s.n_nan} / ${s.n_inf}`]);
  const d = s.shift;
  if (d) {  // serve --compare DIR: this channel's dataset shift (over the whole datasets, not this image)
    rows.push(["shift A→B", `${fmt(d.shift)} (rank ${d.rank + 1})`], ["Cohen's d", fmt(d.effect)], ["W1", fmt(d.w1)],
      ["spatial max A / B", `${fmt(d.spatial_max_mean_a)} / ${fmt(d.spatial_max_mean_b)}`],
      ["A / B", `${d.a} / ${d.b}`]);
  }
  if (s.ablation) rows.push(["ablation", "over the ablated dataset"], ...s.ablation);
  table.replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
}

// Channel numbers over a bare mosaic, as page text placed by the grid geometry (percent of the picture,
// so they follow any display size). `cellPx`: a cell's width on screen; numbers hide below 20 px.
export function renderChannelLabels(box, meta, cellPx) {
  box.replaceChildren();
  const g = meta && meta.geometry;
  box.hidden = !g || meta.labels !== false;
  if (box.hidden) return;
  box.classList.toggle("tiny", cellPx < 20);
  const inactive = new Set(meta.inactive || []);
  meta.channels.forEach((ch, i) => {
    const r = Math.floor(i / g.cols);
    const c = i % g.cols;
    const label = el("span", { class: inactive.has(ch) ? "inactive" : null }, String(ch));
    if (inactive.has(ch)) label.title = `channel ${ch} is inactive: zero everywhere on this image`;
    label.style.left = `${(100 * (g.left + g.sep + c * g.cell_w)) / g.width}%`;
    label.style.top = `${(100 * (g.top + g.sep + r * g.cell_h)) / g.height}%`;
    box.append(label);
  });
}

// The colorbar of a grid as CSS and text: low end, gradient, high end (0 marked when symmetric).
export function renderLegend(box, legend) {
  box.replaceChildren();
  box.hidden = !legend;
  if (!legend) return;
  const bar = el("span", { class: "bar" });
  bar.style.background = `linear-gradient(to right, ${legend.colors.join(", ")})`;
  if (legend.symmetric) bar.append(el("span", { class: "zero" }, "0"));
  box.append(el("span", { class: "lo" }, fmt(legend.lo)), bar, el("span", { class: "hi" }, fmt(legend.hi)),
    el("span", { class: "dim" }, ` ${legend.cmap}`));
}
