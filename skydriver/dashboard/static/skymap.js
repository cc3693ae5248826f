// The skymap of a (partial or final) result, drawn client-side from the result JSON: each screen pixel is
// turned into a sky direction (inverse Mollweide, or inverse gnomonic for the zoom), and shows the finest
// scanned HEALPix pixel containing it. Colour = 2ΔLLH on one fixed scale (viridis reversed: the best fit
// bright), contours where a level is crossed between neighbouring screen pixels.

import { ang2pix, pix2ang, pixelSize } from "./healpix.js";
import { VIRIDIS } from "./colormap.js";

const NAN = "<skyreader.nan>";
const DEG = Math.PI / 180;
const UNSCANNED = [200, 200, 200];

/** The result's pixels: {nsides: [finest first], maps: {nside: Map(pixel -> llh)}, best, count}. */
export function parseResult(skyscanResult) {
  const maps = new Map();
  let best = null;
  let count = 0;
  for (const [key, block] of Object.entries(skyscanResult || {})) {
    const nside = Number(key.split("-")[1]);
    if (!Number.isInteger(nside) || !block || !Array.isArray(block.data)) continue;
    const cols = block.columns || ["index", "llh"];
    const iIndex = cols.indexOf("index");
    const iLlh = cols.indexOf("llh");
    const map = new Map();
    for (const row of block.data) {
      const llh = row[iLlh] === NAN ? NaN : Number(row[iLlh]);
      const pix = Number(row[iIndex]);
      map.set(pix, llh);
      count += 1;
      if (Number.isFinite(llh) && (best === null || llh < best.llh || (llh === best.llh && nside > best.nside))) {
        best = { nside, pix, llh };
      }
    }
    maps.set(nside, map);
  }
  const nsides = [...maps.keys()].sort((a, b) => b - a);
  if (best) {
    const [theta, phi] = pix2ang(best.nside, best.pix);
    best.ra = phi;
    best.dec = HALF_PI_MINUS(theta);
  }
  return { nsides, maps, best, count };
}

function HALF_PI_MINUS(theta) {
  return Math.PI / 2 - theta;
}

/** 2ΔLLH at (ra, dec): the finest scanned pixel holding it, or NaN (unscanned or failed). */
export function valueAt(sky, ra, dec) {
  const theta = Math.PI / 2 - dec;
  for (const nside of sky.nsides) {
    const llh = sky.maps.get(nside).get(ang2pix(nside, theta, ra));
    if (llh !== undefined) return Number.isFinite(llh) ? 2 * (llh - sky.best.llh) : NaN;
  }
  return NaN;
}

export function colour(value, max) {
  if (!Number.isFinite(value)) return UNSCANNED;
  const t = Math.min(Math.max(value / max, 0), 1);
  return VIRIDIS[Math.round((1 - t) * 255)];
}

function sizeCanvas(canvas, cssWidth, aspect) {
  const dpr = Math.min(window.devicePixelRatio || 1, 2);
  const width = Math.max(Math.min(Math.round(cssWidth * dpr), 1200), 120);
  canvas.width = width;
  canvas.height = Math.round(width / aspect);
  canvas.style.width = `${cssWidth}px`;
  return dpr;
}

// Paint a raster: `direction(x, y)` -> [ra, dec] or null (outside the projection).
function raster(ctx, width, height, sky, levels, direction) {
  const image = ctx.createImageData(width, height);
  const values = new Float32Array(width * height);
  const inside = new Uint8Array(width * height);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const i = y * width + x;
      const d = direction(x + 0.5, y + 0.5);
      if (d === null) {
        values[i] = NaN;
        continue;
      }
      inside[i] = 1;
      const v = valueAt(sky, d[0], d[1]);
      values[i] = v;
      const c = colour(v, levels.colour_max);
      image.data[4 * i] = c[0];
      image.data[4 * i + 1] = c[1];
      image.data[4 * i + 2] = c[2];
      image.data[4 * i + 3] = 255;
    }
  }
  // contour lines: a screen pixel where the level is crossed towards its right or lower neighbour
  for (const line of contourStyles(levels)) {
    for (let y = 0; y < height - 1; y += 1) {
      for (let x = 0; x < width - 1; x += 1) {
        const i = y * width + x;
        if (!inside[i]) continue;
        const a = values[i] <= line.level;
        for (const j of [i + 1, i + width]) {
          if (!inside[j] || Number.isNaN(values[i]) || Number.isNaN(values[j])) continue;
          if (a !== values[j] <= line.level) {
            if (line.dashed && Math.floor((x + y) / 4) % 2 === 1) continue;
            const k = a ? i : j; // draw on the inner side
            image.data[4 * k] = line.rgb[0];
            image.data[4 * k + 1] = line.rgb[1];
            image.data[4 * k + 2] = line.rgb[2];
          }
        }
      }
    }
  }
  ctx.putImageData(image, 0, 0);
}

/** The contour lines, as the scanner's zoom plot draws them. */
export function contourStyles(levels) {
  return [
    { level: levels.wilks_50, rgb: [0, 0, 0], css: "#000", dashed: false, label: `50 % (Wilks, 2ΔLLH ${levels.wilks_50})` },
    { level: levels.wilks_90, rgb: [220, 20, 20], css: "#dc1414", dashed: false, label: `90 % (Wilks, 2ΔLLH ${levels.wilks_90})` },
    { level: levels.calibrated_90, rgb: [255, 140, 0], css: "#ff8c00", dashed: true, label: `90 % calibrated (2ΔLLH ${levels.calibrated_90})` },
  ];
}

function star(ctx, x, y, r) {
  ctx.save();
  ctx.beginPath();
  for (let k = 0; k < 10; k += 1) {
    const rr = k % 2 === 0 ? r : r * 0.45;
    const a = -Math.PI / 2 + (k * Math.PI) / 5;
    ctx.lineTo(x + rr * Math.cos(a), y + rr * Math.sin(a));
  }
  ctx.closePath();
  ctx.fillStyle = "#ff1a1a";
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = Math.max(1, r / 6);
  ctx.fill();
  ctx.stroke();
  ctx.restore();
}

// -- Mollweide (full sky) ---------------------------------------------------------------------
function mollweideForward(lon, lat) {
  // Newton iteration for the auxiliary angle: 2t + sin 2t = π sin(lat)
  let t = lat;
  for (let k = 0; k < 30; k += 1) {
    const f = 2 * t + Math.sin(2 * t) - Math.PI * Math.sin(lat);
    const df = 2 + 2 * Math.cos(2 * t);
    if (Math.abs(df) < 1e-12) break;
    const step = f / df;
    t -= step;
    if (Math.abs(step) < 1e-10) break;
  }
  return [((2 * Math.SQRT2) / Math.PI) * lon * Math.cos(t), Math.SQRT2 * Math.sin(t)];
}

/** Draw the full-sky map on `canvas` (CSS width `cssWidth`). Returns the best fit's screen position. */
export function drawFullSky(canvas, cssWidth, sky, levels) {
  const dpr = sizeCanvas(canvas, cssWidth, 2);
  const ctx = canvas.getContext("2d");
  const w = canvas.width;
  const h = canvas.height;
  const rx = w / 2 - 2;
  const ry = h / 2 - 2;
  ctx.clearRect(0, 0, w, h);
  raster(ctx, w, h, sky, levels, (x, y) => {
    const X = ((x - w / 2) / rx) * 2 * Math.SQRT2;
    const Y = ((h / 2 - y) / ry) * Math.SQRT2;
    if ((X * X) / 8 + (Y * Y) / 2 > 1) return null;
    const t = Math.asin(Math.max(-1, Math.min(1, Y / Math.SQRT2)));
    const lat = Math.asin(Math.max(-1, Math.min(1, (2 * t + Math.sin(2 * t)) / Math.PI)));
    const cos = Math.cos(t);
    const lon = cos < 1e-12 ? 0 : (Math.PI * X) / (2 * Math.SQRT2 * cos);
    // RA increases to the left, RA 0 at the centre
    let ra = -lon;
    if (ra < 0) ra += 2 * Math.PI;
    return [ra, lat];
  });
  const toScreen = (ra, dec) => {
    let lon = -ra;
    while (lon < -Math.PI) lon += 2 * Math.PI;
    while (lon > Math.PI) lon -= 2 * Math.PI;
    const [X, Y] = mollweideForward(lon, dec);
    return [w / 2 + (X / (2 * Math.SQRT2)) * rx, h / 2 - (Y / Math.SQRT2) * ry];
  };
  // graticule: Dec every 30°, RA every 60°
  ctx.save();
  ctx.strokeStyle = "rgba(255,255,255,0.45)";
  ctx.lineWidth = dpr;
  for (let dec = -60; dec <= 60; dec += 30) {
    ctx.beginPath();
    for (let lon = -180; lon <= 180; lon += 3) {
      const [x, y] = toScreen(-lon * DEG, dec * DEG);
      if (lon === -180) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    }
    ctx.stroke();
  }
  for (let ra = 0; ra < 360; ra += 60) {
    ctx.beginPath();
    for (let dec = -90; dec <= 90; dec += 3) {
      const [x, y] = toScreen(ra * DEG, dec * DEG);
      if (dec === -90) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    }
    ctx.stroke();
  }
  ctx.fillStyle = "#222";
  ctx.font = `${11 * dpr}px system-ui, sans-serif`;
  ctx.textAlign = "center";
  for (const ra of [300, 240, 120, 60]) {
    const [x, y] = toScreen(ra * DEG, 0);
    ctx.fillText(`${ra}°`, x, y - 3 * dpr);
  }
  ctx.textAlign = "left";
  ctx.fillText("RA 0°", w / 2 + 3 * dpr, h / 2 - 3 * dpr);
  ctx.restore();
  let at = null;
  if (sky.best) {
    at = toScreen(sky.best.ra, sky.best.dec);
    star(ctx, at[0], at[1], 8 * dpr);
  }
  return at;
}

// -- gnomonic zoom around the best fit -----------------------------------------------------------
/** Half-width of the zoom (degrees): the calibrated 90 % region with a margin, within [0.3°, 30°]. */
export function zoomHalfWidth(sky, levels) {
  const b = sky.best;
  let far = 0;
  for (const nside of sky.nsides) {
    for (const [pix, llh] of sky.maps.get(nside)) {
      if (!Number.isFinite(llh) || 2 * (llh - b.llh) > levels.calibrated_90) continue;
      const [theta, phi] = pix2ang(nside, pix);
      const dec = Math.PI / 2 - theta;
      const cosd = Math.sin(dec) * Math.sin(b.dec) + Math.cos(dec) * Math.cos(b.dec) * Math.cos(phi - b.ra);
      far = Math.max(far, Math.acos(Math.max(-1, Math.min(1, cosd))) + pixelSize(nside));
    }
  }
  const finest = pixelSize(sky.nsides[0]);
  return Math.min(Math.max((1.3 * far) / DEG, (4 * finest) / DEG, 0.3), 30);
}

export function drawZoom(canvas, cssWidth, sky, levels) {
  const dpr = sizeCanvas(canvas, cssWidth, 1);
  const ctx = canvas.getContext("2d");
  const w = canvas.width;
  const h = canvas.height;
  const b = sky.best;
  const half = zoomHalfWidth(sky, levels);
  const pad = 34 * dpr;
  const size = w - 2 * pad;
  const scale = size / (2 * Math.tan(half * DEG)); // screen px per unit of tangent plane
  const cx = pad + size / 2;
  const cy = pad / 2 + size / 2;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  const sub = document.createElement("canvas");
  sub.width = Math.round(size);
  sub.height = Math.round(size);
  const sctx = sub.getContext("2d");
  raster(sctx, sub.width, sub.height, sky, levels, (x, y) => {
    const xi = (sub.width / 2 - x) / scale; // East (increasing RA) to the left
    const eta = (sub.height / 2 - y) / scale;
    const rho = Math.hypot(xi, eta);
    if (rho === 0) return [b.ra, b.dec];
    const c = Math.atan(rho);
    const dec = Math.asin(Math.cos(c) * Math.sin(b.dec) + (eta * Math.sin(c) * Math.cos(b.dec)) / rho);
    const ra = b.ra + Math.atan2(xi * Math.sin(c), rho * Math.cos(b.dec) * Math.cos(c) - eta * Math.sin(b.dec) * Math.sin(c));
    return [((ra % (2 * Math.PI)) + 2 * Math.PI) % (2 * Math.PI), dec];
  });
  ctx.drawImage(sub, cx - size / 2, cy - size / 2);
  ctx.strokeStyle = "#444";
  ctx.lineWidth = dpr;
  ctx.strokeRect(cx - size / 2, cy - size / 2, size, size);
  // axes: offsets in degrees
  ctx.fillStyle = "#222";
  ctx.font = `${11 * dpr}px system-ui, sans-serif`;
  ctx.textAlign = "center";
  const ticks = niceTicks(half);
  for (const t of ticks) {
    const off = Math.tan(t * DEG) * scale;
    ctx.fillText(`${-t}`, cx + off, cy + size / 2 + 13 * dpr); // East left: x offset = −ΔRA cos Dec
    ctx.beginPath();
    ctx.moveTo(cx + off, cy + size / 2);
    ctx.lineTo(cx + off, cy + size / 2 + 4 * dpr);
    ctx.stroke();
  }
  ctx.fillText("ΔRA·cos Dec [deg] (East left)", cx, h - 3 * dpr);
  ctx.textAlign = "right";
  for (const t of ticks) {
    const off = Math.tan(t * DEG) * scale;
    ctx.fillText(`${t}`, cx - size / 2 - 5 * dpr, cy - off + 4 * dpr);
  }
  ctx.save();
  ctx.translate(10 * dpr, cy);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.fillText("ΔDec [deg]", 0, 0);
  ctx.restore();
  star(ctx, cx, cy, 9 * dpr);
  return half;
}

function niceTicks(half) {
  const raw = half / 2;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let t = -Math.floor(half / step) * step; t <= half + 1e-9; t += step) {
    out.push(Number(t.toPrecision(6)));
  }
  return out;
}

/** The colour bar: 2ΔLLH from 0 to `colour_max`, ticks at the contour levels. */
export function drawColourBar(canvas, cssWidth, levels) {
  const dpr = sizeCanvas(canvas, cssWidth, cssWidth / 46);
  const ctx = canvas.getContext("2d");
  const w = canvas.width;
  const pad = 22 * dpr;
  const barH = 12 * dpr;
  ctx.clearRect(0, 0, w, canvas.height);
  for (let x = 0; x < w - 2 * pad; x += 1) {
    const c = colour((x / (w - 2 * pad)) * levels.colour_max, levels.colour_max);
    ctx.fillStyle = `rgb(${c[0]},${c[1]},${c[2]})`;
    ctx.fillRect(pad + x, 2 * dpr, 1.5, barH);
  }
  ctx.strokeStyle = "#333";
  ctx.strokeRect(pad, 2 * dpr, w - 2 * pad, barH);
  ctx.fillStyle = "#222";
  ctx.font = `${11 * dpr}px system-ui, sans-serif`;
  ctx.textAlign = "center";
  const marks = [0, levels.wilks_50, levels.wilks_90, levels.calibrated_90, levels.colour_max];
  let lastX = -Infinity;
  for (const m of marks) {
    const x = pad + (m / levels.colour_max) * (w - 2 * pad);
    ctx.beginPath();
    ctx.moveTo(x, 2 * dpr);
    ctx.lineTo(x, barH + 6 * dpr);
    ctx.stroke();
    if (x - lastX > 26 * dpr) {
      const label = m === levels.colour_max ? `≥${m.toFixed(1)}` : `${m}`;
      ctx.fillText(label, x, barH + 17 * dpr);
      lastX = x;
    }
  }
  ctx.fillText("2ΔLLH", w / 2, barH + 30 * dpr);
}
