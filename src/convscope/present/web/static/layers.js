// The layer list: one table row per layer, collapsible groups (nested models and blocks of layers
// sharing a name prefix, as the server groups them), a filter box, and the selected layer.
import { shape } from "./api.js";
import { layerTitle, rfText } from "./views.js";

const INDENT_PX = 10;

function cell(cls, ...children) {
  const td = document.createElement("td");
  td.className = cls;
  td.append(...children);
  return td;
}

function span(cls, text) {
  const s = document.createElement("span");
  s.className = cls;
  s.textContent = text;
  return s;
}

export class LayerList {
  // tbody: the table body to fill; model: /api/model; onPick(key): a layer was clicked.
  constructor(tbody, model, onPick) {
    this.tbody = tbody;
    this.layers = model.layers;
    this.groups = new Map((model.groups || []).map((g) => [g.id, g]));
    this.byKey = new Map(this.layers.filter((r) => r.key).map((r) => [r.key, r]));
    this.onPick = onPick;
    this.filter = [];
    // Big models start folded (one row per block); small ones show every layer.
    this.collapsed = new Set(this.layers.length > 40 ? this.groups.keys() : []);
    this.auto = new Set();  // groups opened only to show the selected layer: folded again when it leaves
    this.selected = null;
    this.rows = [];  // {tr, row | null, group | null, chain: [group ids, outermost first]}
    this.build();
  }

  chain(groupId) {
    const out = [];
    for (let g = groupId; g; g = this.groups.get(g) ? this.groups.get(g).parent : null) out.unshift(g);
    return out;
  }

  build() {
    this.tbody.replaceChildren();
    this.rows = [];
    const headed = new Set();
    for (const row of this.layers) {
      const chain = this.chain(row.group);
      // A block's header goes before its first layer (a nested model's own row is its header).
      for (const id of chain) {
        const g = this.groups.get(id);
        if (g.kind === "block" && !headed.has(id)) {
          headed.add(id);
          this.addHeader(g, this.chain(g.parent));
        }
      }
      const own = this.groups.get(row.path);
      this.addLayer(row, chain, own && own.kind === "model" ? own : null);
    }
    this.sizeColumns();
    this.apply();
  }

  // Output and RF columns as wide as their longest text (measured in the cells' font), so numbers are
  // never cut; the name column takes what is left.
  sizeColumns() {
    const table = this.tbody.closest("table");
    const ctx = document.createElement("canvas").getContext("2d");
    for (const [cls, texts] of [["shape", this.layers.map((r) => shape(r.output_shape ? r.output_shape.slice(1) : null))],
      ["rf", this.layers.map(rfText)]]) {
      const probe = this.tbody.querySelector(`td.${cls}`);
      if (!probe) continue;
      const cs = getComputedStyle(probe);
      ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
      const head = table.querySelector(`th:nth-child(${cls === "shape" ? 2 : 3})`);
      const widest = Math.max(...[...texts, head ? head.textContent : ""].map((t) => ctx.measureText(t).width));
      table.querySelector(`col.${cls}`).style.width = `${Math.ceil(widest) + 2 + parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight)}px`;
    }
  }

  nameCell(level, caret, ...parts) {
    const td = cell("name", ...(caret ? [span("caret", "")] : []), ...parts);
    td.style.paddingLeft = `${4 + level * INDENT_PX}px`;
    return td;
  }

  addHeader(g, chain) {
    const last = g.last_key ? this.byKey.get(g.last_key) : null;
    const tr = document.createElement("tr");
    tr.className = "group";
    tr.dataset.group = g.id;
    tr.title = `${g.id}: ${g.size} layers; click to fold or unfold` + (last ? `\noutput and RF of ${last.path}` : "");
    tr.append(this.nameCell(chain.length, true, span("nm", g.label), span("cls", ` ${g.size}`)),
      cell("shape", last ? shape(last.output_shape ? last.output_shape.slice(1) : null) : ""),
      cell("rf", last ? rfText(last) : ""));
    tr.addEventListener("click", () => this.toggle(g.id));
    this.tbody.append(tr);
    this.rows.push({ tr, row: null, group: g, chain });
  }

  addLayer(row, chain, ownGroup) {
    const tr = document.createElement("tr");
    tr.className = row.viewable ? "layer" : "layer container";
    if (ownGroup) {
      tr.classList.add("group");
      tr.dataset.group = ownGroup.id;
    }
    tr.title = layerTitle(row);
    tr.dataset.key = row.key || "";
    if (!row.viewable && !ownGroup) tr.setAttribute("aria-disabled", "true");
    const name = (row.short || row.path.split("/").pop()) + (row.call ? ` #${row.call}` : "");
    tr.append(this.nameCell(chain.length, Boolean(ownGroup), span("nm", name), span("cls", ` ${row.class}`)),
      cell("shape", shape(row.output_shape ? row.output_shape.slice(1) : null)),
      cell("rf", rfText(row)));
    tr.addEventListener("click", (e) => {
      if (ownGroup && (!row.viewable || e.target.classList.contains("caret"))) this.toggle(ownGroup.id);
      else if (row.viewable) this.onPick(row.key);
    });
    this.tbody.append(tr);
    this.rows.push({ tr, row, group: ownGroup, chain });
  }

  matches(row) {
    if (!this.filter.length) return true;
    const text = `${row.path} ${row.class}`.toLowerCase();
    return this.filter.every((t) => text.includes(t));
  }

  // Show or hide every row for the current folds and filter.
  apply() {
    const filtering = this.filter.length > 0;
    const live = new Set();  // groups holding a match (filtering)
    if (filtering) {
      for (const r of this.rows) {
        if (r.row && this.matches(r.row)) for (const id of r.chain) live.add(id);
      }
    }
    let shown = 0;
    for (const r of this.rows) {
      let visible;
      if (filtering) {
        visible = r.row ? this.matches(r.row) || (r.group && live.has(r.group.id)) : live.has(r.group.id);
      } else {
        visible = !r.chain.some((id) => this.collapsed.has(id));
      }
      r.tr.hidden = !visible;
      if (visible && r.row) shown += 1;
      if (r.group) {
        const open = filtering || !this.collapsed.has(r.group.id);
        r.tr.setAttribute("aria-expanded", open ? "true" : "false");
        r.tr.querySelector(".caret").textContent = open ? "▾" : "▸";
      }
    }
    this.shown = shown;
  }

  setFilter(text) {
    this.filter = text.toLowerCase().split(/\s+/).filter(Boolean);
    this.apply();
    return this.filter.length ? this.rows.filter((r) => r.row && !r.tr.hidden && this.matches(r.row)).length : null;
  }

  toggle(id) {
    this.auto.delete(id);
    if (this.collapsed.has(id)) this.collapsed.delete(id);
    else this.collapsed.add(id);
    this.apply();
  }

  // Keys the arrow keys step through: every viewable layer that passes the filter (folded or not).
  navigable() {
    return this.layers.filter((r) => r.viewable && r.key && this.matches(r)).map((r) => r.key);
  }

  // Select `key`: unfold the groups holding it, fold again those opened only for the previous one.
  mark(key) {
    this.selected = key;
    const row = this.byKey.get(key);
    const needed = new Set(row ? this.chain(row.group) : []);
    for (const id of [...this.auto]) {
      if (!needed.has(id)) {
        this.collapsed.add(id);
        this.auto.delete(id);
      }
    }
    for (const id of needed) {
      if (this.collapsed.has(id)) {
        this.collapsed.delete(id);
        this.auto.add(id);
      }
    }
    this.apply();
    for (const r of this.rows) {
      const on = Boolean(r.row) && r.row.key === key;
      r.tr.classList.toggle("selected", on);
      if (r.row) r.tr.setAttribute("aria-selected", on ? "true" : "false");
      if (on) r.tr.scrollIntoView({ block: "nearest" });
    }
  }
}
