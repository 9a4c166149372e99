// The 2-D map of the user embedding (PCA computed server-side): background sample, audience and
// seeds in three colours, seeds drawn last so they stay visible. Click a point to pick that user.

const STYLE = {
  background: { colour: "#b8bec6", radius: 1.8 },
  audience: { colour: "#e8590c", radius: 3 },
  seeds: { colour: "#1f6feb", radius: 4 },
};
const LAYERS = ["background", "audience", "seeds"];
const PAD = 14;

export class UserMap {
  constructor(canvas, onPick) {
    this.canvas = canvas;
    this.onPick = onPick;
    this.screen = []; // [x, y, user_id, layer] of every drawn point, for picking
    canvas.addEventListener("click", (e) => this.pick(e));
    canvas.addEventListener("mousemove", (e) => {
      const hit = this.nearest(e);
      canvas.title = hit ? `${hit[3] === "seeds" ? "seed" : hit[3]} user ${hit[2]}` : "";
    });
  }

  clear() {
    const ctx = this.canvas.getContext("2d");
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.screen = [];
    for (const layer of LAYERS) this.canvas.dataset[layer] = "0";
  }

  // points: {background: [{user_id, x, y}], audience: [...], seeds: [...]}; returns drawn counts
  draw(points) {
    this.clear();
    const all = LAYERS.flatMap((l) => points[l] || []);
    if (!all.length) return {};
    const xs = all.map((p) => p.x), ys = all.map((p) => p.y);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const w = this.canvas.width - 2 * PAD, h = this.canvas.height - 2 * PAD;
    const scale = Math.min(w / (x1 - x0 || 1), h / (y1 - y0 || 1));
    const ox = PAD + (w - scale * (x1 - x0)) / 2, oy = PAD + (h - scale * (y1 - y0)) / 2;
    const ctx = this.canvas.getContext("2d");
    const counts = {};
    for (const layer of LAYERS) {
      const { colour, radius } = STYLE[layer];
      ctx.fillStyle = colour;
      ctx.globalAlpha = layer === "background" ? 0.7 : 0.9;
      let n = 0;
      for (const p of points[layer] || []) {
        const sx = ox + (p.x - x0) * scale, sy = oy + (y1 - p.y) * scale; // y up, as in a plot
        ctx.beginPath();
        ctx.arc(sx, sy, radius, 0, 2 * Math.PI);
        ctx.fill();
        this.screen.push([sx, sy, p.user_id, layer]);
        n += 1;
      }
      counts[layer] = n;
      this.canvas.dataset[layer] = String(n);
    }
    ctx.globalAlpha = 1;
    return counts;
  }

  nearest(event) {
    const r = this.canvas.getBoundingClientRect();
    const x = ((event.clientX - r.left) * this.canvas.width) / r.width;
    const y = ((event.clientY - r.top) * this.canvas.height) / r.height;
    let best = null, bestD = 36; // within 6 canvas pixels
    for (let i = this.screen.length - 1; i >= 0; i--) { // top layer first
      const p = this.screen[i];
      const d = (p[0] - x) ** 2 + (p[1] - y) ** 2;
      if (d < bestD) { best = p; bestD = d; }
    }
    return best;
  }

  pick(event) {
    const hit = this.nearest(event);
    if (hit) this.onPick(hit[2]);
  }
}
