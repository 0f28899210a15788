// ovdet serve: the page. Plain JavaScript, no dependencies; talks to /api/info and /api/detect
// of the server that served it (nothing else: the Content-Security-Policy forbids it).
//
// Each image is sent once per prompt and threshold; the server returns its detections as the
// COCO results `ovdet detect` writes. Raising the score slider filters them here; lowering it
// below the threshold they were computed at asks the server again. So what is drawn, listed
// and downloaded is OVPredictor.predict(image, vocabulary, score_thresh=slider).
"use strict";

const MAX_IMAGES = 50;
const MIN_DRAW_SIZE = 512; // smaller images are enlarged (nearest neighbour), as ovdet detect does
const MASK_ALPHA = 0.45;

const $ = (id) => document.getElementById(id);
const state = {
  info: null,
  images: [], // {id, file, decoded, name, status, response, error, thresh, bitmap, masks, ...}
  prompt: null, // the prompt the shown results were computed with
  busy: false,
  rerunTimer: null,
};

// ---------------------------------------------------------- colours (as ovdet.utils.visualize)
function hsvToRgb(h, s, v) {
  const i = Math.floor(h * 6);
  const f = h * 6 - i;
  const p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i % 6];
  return [Math.trunc(r * 255), Math.trunc(g * 255), Math.trunc(b * 255)];
}
function classColour(index) {
  return hsvToRgb((index * 0.618033988749895) % 1.0, 0.85, 0.95);
}
function css(rgb) {
  return `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
}
function textColour(rgb) {
  return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 150 ? "#000" : "#fff";
}

// ---------------------------------------------------------- COCO RLE (pycocotools' string form)
function rleCounts(s) {
  const counts = [];
  let p = 0;
  while (p < s.length) {
    let x = 0, k = 0, more = 1;
    while (more) {
      const c = s.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = c & 0x20;
      p++;
      k++;
      if (!more && (c & 0x10)) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}
function decodeMask(rle) {
  // -> Uint8Array (h * w), row-major; RLE runs are column-major, starting with zeros
  const [h, w] = rle.size;
  const mask = new Uint8Array(h * w);
  const counts = typeof rle.counts === "string" ? rleCounts(rle.counts) : rle.counts;
  let i = 0;
  counts.forEach((n, j) => {
    if (j % 2 === 1) {
      for (let t = i; t < i + n; t++) mask[(t % h) * w + Math.floor(t / h)] = 1;
    }
    i += n;
  });
  return mask;
}

// ---------------------------------------------------------- prompt
function parseNames(text) {
  const seen = new Set();
  const names = [];
  for (const part of text.split(/[,\n]/)) {
    const name = part.trim();
    if (name && !seen.has(name)) {
      seen.add(name);
      names.push(name);
    }
  }
  return names;
}
function promptKind() {
  return document.querySelector('input[name="prompt-kind"]:checked').value;
}
function currentPrompt() {
  if (promptKind() === "caption") return { caption: $("caption").value.trim() };
  return { vocabulary: parseNames($("vocabulary").value) };
}
function checkPrompt(prompt) {
  const limits = state.info.limits;
  if (prompt.caption !== undefined) {
    if (!prompt.caption) return "type a caption first";
    if (prompt.caption.length > limits.max_caption_chars)
      return `the caption is over ${limits.max_caption_chars} characters`;
    return null;
  }
  if (!prompt.vocabulary.length) return "type at least one class name";
  if (prompt.vocabulary.length > limits.max_vocabulary)
    return `${prompt.vocabulary.length} names: at most ${limits.max_vocabulary} per vocabulary`;
  const long = prompt.vocabulary.find((n) => n.length > limits.max_name_chars);
  if (long) {
    return `a class name is over ${limits.max_name_chars} characters: "${long.slice(0, 40)}…"`;
  }
  return null;
}
function samePrompt(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}
function threshold() {
  return parseFloat($("score").value);
}

// ---------------------------------------------------------- server
async function detect(image, prompt, thresh) {
  const generation = ++image.generation;
  image.status = "running";
  render(image);
  let response = null, error = null;
  try {
    if (image.file.size > state.info.limits.max_upload_bytes) {
      const mb = (n) => (n / 2 ** 20).toFixed(1);
      throw new Error(`${image.name}: the file is ${mb(image.file.size)} MB, over this server's ` +
        `cap of ${mb(state.info.limits.max_upload_bytes)} MB per image; upload a smaller image`);
    }
    // the body: one json line, a newline, the file's bytes as they are (no copy, no base64)
    const head = JSON.stringify({ file_name: image.name, image_id: image.id,
                                  score_thresh: thresh, ...prompt });
    const res = await fetch("/api/detect", {
      method: "POST",
      headers: { "Content-Type": "application/x-ovdet-detect" },
      body: new Blob([head + "\n", image.file]),
    });
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      throw new Error(`the server answered ${res.status} ${res.statusText} without a message`);
    }
    if (!res.ok) throw new Error(data.error || `the server answered ${res.status}`);
    response = data;
  } catch (e) {
    error = e.message || String(e);
  }
  if (generation !== image.generation) return; // a newer request for this image was sent
  image.status = "done";
  image.response = response;
  image.error = error;
  image.thresh = thresh;
  image.masks = new Map();
  if (response && !image.bitmap) image.bitmap = await image.decoded;
  render(image);
  updateSummary();
  if (response && thresh > threshold()) rerunBelowThreshold(); // lowered while it ran
}
async function runAll(images) {
  const prompt = currentPrompt();
  const problem = checkPrompt(prompt);
  if (problem) {
    setStatus(problem, true);
    return;
  }
  state.prompt = prompt;
  updatePromptHint();
  const thresh = threshold();
  state.busy = true;
  updateSummary();
  for (const image of images) await detect(image, prompt, thresh); // the model runs one at a time
  state.busy = false;
  updateSummary();
}
function rerunBelowThreshold() {
  // the slider went below the threshold some results were computed at: ask again
  clearTimeout(state.rerunTimer);
  state.rerunTimer = setTimeout(() => {
    const t = threshold();
    const stale = state.images.filter((im) => im.response && im.thresh > t);
    if (stale.length && state.prompt) runWithPrompt(stale, state.prompt, t);
  }, 250);
}
async function runWithPrompt(images, prompt, thresh) {
  state.busy = true;
  updateSummary();
  for (const image of images) await detect(image, prompt, thresh);
  state.busy = false;
  updateSummary();
}

// ---------------------------------------------------------- results
function shown(image) {
  const t = threshold();
  return image.response ? image.response.results.filter((r) => r.score >= t) : [];
}
function categoryOf(image, result) {
  return image.response.categories[result.category_id - 1];
}
function el(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}
function labelText(category, score) {
  return `${category.novel ? "*" : ""}${category.name} ${score.toFixed(2)}`;
}
function card(image) {
  let node = document.querySelector(`article.card[data-image-id="${image.id}"]`);
  if (!node) {
    node = el("article", {
      class: "card", "data-image-id": image.id, "data-file-name": image.name,
    });
    $("results").appendChild(node);
    $("empty").hidden = true;
  }
  return node;
}
function render(image) {
  const node = card(image);
  node.replaceChildren();
  node.dataset.status = image.status;
  if (image.thresh !== null) node.dataset.thresh = String(image.thresh);
  const title = el("h2", {}, image.name);
  node.appendChild(title);
  if (image.error && image.status !== "running") {
    node.dataset.status = "error";
    node.appendChild(el("p", { class: "error", role: "alert" }, image.error));
    return;
  }
  if (!image.response) {
    const note = image.status === "running" ? "  detecting…" : "  waiting…";
    title.appendChild(el("small", {}, note));
    return;
  }
  const res = image.response;
  const results = shown(image);
  title.appendChild(el("small", {},
    `  ${res.image.width} x ${res.image.height} · ${results.length} detections · ` +
    `${(res.timing.predict_s).toFixed(2)} s` +
    (image.status === "running" ? " · updating…" : "")));
  node.appendChild(draw(image, results));
  if (!image.bitmap) {
    node.appendChild(el("p", { class: "note" },
      "This browser cannot show this image format: the detections are drawn on a blank."));
  }
  node.appendChild(table(image, results));
}
function draw(image, results) {
  const { width: w, height: h } = image.response.image;
  const k = Math.max(1, Math.ceil(MIN_DRAW_SIZE / Math.max(w, h)));
  const canvas = el("canvas", { width: w * k, height: h * k, "data-scale": k });
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  if (image.bitmap) ctx.drawImage(image.bitmap, 0, 0, w * k, h * k);
  else {
    ctx.fillStyle = "#ddd";
    ctx.fillRect(0, 0, w * k, h * k);
  }
  const order = results.slice().reverse(); // lowest score first: the best are drawn on top
  const withMasks = order.filter((r) => r.segmentation);
  if (withMasks.length) {
    const overlay = new ImageData(w, h);
    const alpha = Math.round(MASK_ALPHA * 255);
    const px = overlay.data;
    for (const r of withMasks) {
      let mask = image.masks.get(r); // decoded once per result
      if (!mask) {
        mask = decodeMask(r.segmentation);
        image.masks.set(r, mask);
      }
      const [cr, cg, cb] = classColour(r.category_id - 1);
      for (let p = 0; p < mask.length; p++) {
        if (!mask[p]) continue;
        px[4 * p] = cr;
        px[4 * p + 1] = cg;
        px[4 * p + 2] = cb;
        px[4 * p + 3] = alpha;
      }
    }
    const off = new OffscreenCanvas(w, h);
    off.getContext("2d").putImageData(overlay, 0, 0);
    ctx.drawImage(off, 0, 0, w * k, h * k);
  }
  const lw = Math.max(2, Math.round(Math.max(w * k, h * k) / 400));
  const font = Math.max(14, Math.round(Math.max(w * k, h * k) / 72));
  ctx.font = `${font}px system-ui, "DejaVu Sans", sans-serif`;
  ctx.textBaseline = "top";
  ctx.lineWidth = lw;
  for (const r of order) {
    const category = categoryOf(image, r);
    const [x, y, bw, bh] = r.bbox.map((v) => v * k);
    ctx.strokeStyle = css(classColour(r.category_id - 1));
    ctx.setLineDash(category.novel ? [3 * lw, 2 * lw] : []);
    ctx.strokeRect(x, y, bw, bh);
  }
  ctx.setLineDash([]);
  const placed = [];
  for (const r of results) { // the best first: they get the free places
    const category = categoryOf(image, r);
    const text = labelText(category, r.score);
    const tw = Math.ceil(ctx.measureText(text).width) + 6, th = font + 4;
    const [x, y, bw, bh] = r.bbox.map((v) => v * k);
    const candidates = [[x, y - th], [x, y + bh], [x, y], [x + bw - tw, y - th]].map(([cx, cy]) => [
      Math.min(Math.max(0, cx), w * k - tw), Math.min(Math.max(0, cy), h * k - th)]);
    const free = candidates.find(([cx, cy]) => !placed.some(([px, py, pw, ph]) =>
      cx < px + pw && px < cx + tw && cy < py + ph && py < cy + th));
    if (!free) continue; // no room: the table lists it
    placed.push([free[0], free[1], tw, th]);
    const rgb = classColour(r.category_id - 1);
    ctx.fillStyle = css(rgb);
    ctx.fillRect(free[0], free[1], tw, th);
    ctx.fillStyle = textColour(rgb);
    ctx.fillText(text, free[0] + 3, free[1] + 2);
  }
  return canvas;
}
function table(image, results) {
  const t = el("table", { class: "detections" });
  const head = el("tr");
  for (const h of ["class", "", "score", "box (x0, y0, x1, y1)"]) head.appendChild(el("th", {}, h));
  t.appendChild(head);
  for (const r of results) {
    const category = categoryOf(image, r);
    const kind = category.novel === null ? "" : category.novel ? "novel" : "base";
    const row = el("tr", {
      class: "detection",
      "data-name": category.name,
      "data-kind": kind,
      "data-score": String(r.score),
      "data-bbox": JSON.stringify(r.bbox),
      "data-category-id": r.category_id,
      "data-mask": r.segmentation ? "1" : "0",
    });
    const name = el("td");
    const dot = el("span", { class: "dot" });
    dot.style.background = css(classColour(r.category_id - 1));
    name.append(dot, (category.novel ? "*" : "") + category.name);
    row.appendChild(name);
    const tag = el("td");
    if (kind) tag.appendChild(el("span", { class: `tag ${kind}` }, kind));
    row.appendChild(tag);
    row.appendChild(el("td", { class: "num" }, r.score.toFixed(3)));
    const [x, y, bw, bh] = r.bbox;
    row.appendChild(el("td", { class: "num" },
      [x, y, x + bw, y + bh].map((v) => v.toFixed(1)).join(", ")));
    t.appendChild(row);
  }
  return t;
}
function renderAll() {
  for (const image of state.images) if (image.response || image.error) render(image);
  updateSummary();
}

// ---------------------------------------------------------- downloads (the files of ovdet detect)
function doneImages() {
  return state.images.filter((im) => im.response).sort((a, b) => a.id - b.id);
}
function resultsJson() {
  return doneImages().flatMap((im) => shown(im));
}
function detectionsJson() {
  const images = doneImages();
  const results = resultsJson();
  const categories = images.length
    ? images[0].response.categories.map((c) => ({ id: c.id, name: c.name }))
    : [];
  return {
    images: images.map((im) => ({
      id: im.response.image.id,
      file_name: im.response.image.file_name,
      height: im.response.image.height,
      width: im.response.image.width,
    })),
    categories,
    annotations: results.map((r, i) =>
      Object.assign({}, r, { id: i + 1, area: r.bbox[2] * r.bbox[3], iscrowd: 0 })),
  };
}
function download(name, data) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(data)], { type: "application/json" }));
  const a = el("a", { href: url, download: name });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ---------------------------------------------------------- status
function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").style.color = isError ? "var(--error-fg)" : "";
}
function updateSummary() {
  const done = doneImages();
  const failed = state.images.filter((im) => im.error).length;
  const n = resultsJson().length;
  const parts = [];
  if (state.busy) parts.push("detecting…");
  if (state.images.length) {
    parts.push(`${done.length} of ${state.images.length} images done`);
    if (failed) parts.push(`${failed} could not be read`);
    parts.push(`${n} detections with score ≥ ${threshold().toFixed(2)}`);
  }
  setStatus(parts.join(" · "));
  $("download-results").disabled = !done.length;
  $("download-detections").disabled = !done.length;
  document.body.dataset.busy = state.busy ? "1" : "0";
}
function updatePromptHint() {
  const hint = $("prompt-hint");
  const stale = state.prompt && state.images.length && !samePrompt(currentPrompt(), state.prompt);
  hint.classList.toggle("stale", Boolean(stale));
  const limits = state.info ? state.info.limits : null;
  const base = promptKind() === "caption"
    ? "A sentence naming what to find" +
      (limits ? ` (at most ${limits.max_caption_chars} characters).` : ".")
    : "Names separated by commas or new lines" +
      (limits ? `; at most ${limits.max_vocabulary}.` : ".");
  hint.textContent = stale ? "Changed: press Detect to run it on the images." : base;
}

// ---------------------------------------------------------- input
function addFiles(files) {
  const room = MAX_IMAGES - state.images.length;
  const list = Array.from(files).slice(0, Math.max(0, room));
  if (files.length > list.length) {
    const left = files.length - list.length;
    setStatus(`at most ${MAX_IMAGES} images on the page: ${left} left out`, true);
  }
  const added = list.map((file) => ({
    id: state.images.length + list.indexOf(file) + 1,
    file,
    // decoded while the server works; null when the browser cannot show it (e.g. TIFF)
    decoded: createImageBitmap(file, { imageOrientation: "from-image" }).catch(() => null),
    name: file.name || "image",
    status: "queued",
    response: null,
    error: null,
    thresh: null,
    bitmap: null,
    masks: new Map(),
    generation: 0,
  }));
  state.images.push(...added);
  added.forEach(render);
  if (added.length) runAll(added);
}
function preset(kind) {
  const model = state.info.model;
  const names = { classes: model.classes, base: model.base, novel: model.novel }[kind] || [];
  $("vocabulary").value = names.join(", ");
  updatePromptHint();
}
function setup(info) {
  state.info = info;
  const model = info.model;
  $("model-name").textContent = model.name;
  $("model-description").textContent = model.description;
  const metrics = Object.entries(model.metrics || {})
    .filter(([, v]) => typeof v === "number")
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(1)}`);
  const dataset = typeof (model.metrics || {}).dataset === "string"
    ? ` (${model.metrics.dataset})` : "";
  $("model-metrics").textContent = metrics.length ? metrics.join(" · ") + dataset : "";
  $("vocabulary").value = model.classes.join(", ");
  for (const b of document.querySelectorAll("[data-preset]")) {
    const list = model[b.dataset.preset] || [];
    b.hidden = !list.length;
    b.addEventListener("click", () => preset(b.dataset.preset));
  }
  if (model.prompts.includes("caption")) {
    $("caption-choice").disabled = false;
    $("caption-note").textContent = "";
  }
  if (!model.prompts.includes("vocabulary")) {
    document.querySelector('input[value="vocabulary"]').disabled = true;
    $("caption-choice").checked = true;
    switchPrompt();
  }
  const l = info.limits;
  $("limits").textContent = `Limits: ${(l.max_upload_bytes / 2 ** 20).toFixed(0)} MB and ` +
    `${(l.max_pixels / 1e6).toFixed(0)} megapixels per image, ${l.max_vocabulary} class names.`;
  updatePromptHint();
  updateSummary();
}
function switchPrompt() {
  const caption = promptKind() === "caption";
  $("caption").hidden = !caption;
  $("vocabulary").hidden = caption;
  $("presets").hidden = caption;
  updatePromptHint();
}

document.addEventListener("DOMContentLoaded", async () => {
  const drop = $("drop");
  drop.addEventListener("click", () => $("files").click());
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") $("files").click();
  });
  $("files").addEventListener("change", (e) => {
    addFiles(e.target.files);
    e.target.value = "";
  });
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    addFiles(e.dataTransfer.files);
  });
  $("score").addEventListener("input", () => {
    $("score-value").textContent = threshold().toFixed(2);
    renderAll();
    if (state.images.some((im) => im.response && im.thresh > threshold())) rerunBelowThreshold();
  });
  $("run").addEventListener("click", () => runAll(state.images));
  $("clear").addEventListener("click", () => {
    state.images.forEach((im) => im.generation++);
    state.images = [];
    document.querySelectorAll("article.card").forEach((n) => n.remove());
    $("empty").hidden = false;
    updateSummary();
  });
  for (const id of ["vocabulary", "caption"]) {
    $(id).addEventListener("input", updatePromptHint);
    $(id).addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) runAll(state.images);
    });
  }
  for (const r of document.querySelectorAll('input[name="prompt-kind"]'))
    r.addEventListener("change", switchPrompt);
  $("download-results").addEventListener("click", () => download("results.json", resultsJson()));
  $("download-detections").addEventListener("click", () =>
    download("detections.json", detectionsJson()));
  try {
    const res = await fetch("/api/info");
    setup(await res.json());
    document.body.dataset.ready = "1";
  } catch (e) {
    setStatus(`cannot reach the ovdet server: ${e.message || e}`, true);
  }
});
