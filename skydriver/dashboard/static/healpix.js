// HEALPix in the RING scheme (Górski et al. 2005, ApJ 622, 759): pixel centres (pix2ang) and the pixel
// holding a direction (ang2pix), written from the paper's formulas. theta = colatitude, phi = longitude,
// both in radians. Checked against healpy by tests/unit/test_dashboard_js.py (node runs this file).

const TWO_PI = 2 * Math.PI;
const HALF_PI = Math.PI / 2;

/** Number of pixels of a map of `nside`. */
export function npix(nside) {
  return 12 * nside * nside;
}

/** [theta, phi] of the centre of RING pixel `ipix`. */
export function pix2ang(nside, ipix) {
  const n = nside;
  const ncap = 2 * n * (n - 1); // pixels in the north polar cap
  const total = 12 * n * n;
  if (ipix < 0 || ipix >= total || !Number.isInteger(ipix)) {
    throw new RangeError(`pixel ${ipix} is not in a map of nside ${n}`);
  }
  if (ipix < ncap) {
    // north cap: ring i (1-based) holds 4i pixels
    const ring = Math.floor((1 + Math.sqrt(1 + 2 * ipix)) / 2);
    const fixed = ringFix(ring, ipix, (r) => 2 * r * (r - 1));
    const iphi = ipix - 2 * fixed * (fixed - 1) + 1;
    const z = 1 - (fixed * fixed) / (3 * n * n);
    return [Math.acos(z), ((iphi - 0.5) * HALF_PI) / fixed];
  }
  if (ipix < total - ncap) {
    // equatorial belt: rings n .. 3n, 4n pixels each; odd rings are shifted by half a pixel
    const ip = ipix - ncap;
    const ring = Math.floor(ip / (4 * n)) + n;
    const iphi = (ip % (4 * n)) + 1;
    const shift = (ring + n) % 2 === 1 ? 1 : 0.5;
    const z = ((2 * n - ring) * 2) / (3 * n);
    return [Math.acos(z), ((iphi - shift) * HALF_PI) / n];
  }
  // south cap, mirrored: counted from the last pixel
  const ip = total - ipix; // 1 .. ncap
  const ring = Math.floor((1 + Math.sqrt(2 * ip - 1)) / 2);
  const fixed = ringFix(ring, ip - 1, (r) => 2 * r * (r - 1));
  const iphi = 4 * fixed + 1 - (ip - 2 * fixed * (fixed - 1));
  const z = (fixed * fixed) / (3 * n * n) - 1;
  return [Math.acos(z), ((iphi - 0.5) * HALF_PI) / fixed];
}

// The square root above is exact for the rings' first pixels only up to rounding: step to the ring whose
// first pixel index (`start(ring)`) is <= p < start(ring + 1).
function ringFix(ring, p, start) {
  let r = Math.max(ring, 1);
  while (start(r) > p) r -= 1;
  while (start(r + 1) <= p) r += 1;
  return r;
}

/** The RING pixel of `nside` containing the direction (theta, phi). */
export function ang2pix(nside, theta, phi) {
  const n = nside;
  const z = Math.cos(theta);
  const za = Math.abs(z);
  let p = phi % TWO_PI;
  if (p < 0) p += TWO_PI;
  const tt = p / HALF_PI; // in [0, 4)
  if (za <= 2 / 3) {
    // equatorial: the two families of diagonal lines through the pixel
    const t1 = n * (0.5 + tt);
    const t2 = n * z * 0.75;
    const jp = Math.floor(t1 - t2); // ascending edge line index
    const jm = Math.floor(t1 + t2); // descending edge line index
    const ring = n + 1 + jp - jm; // 1 .. 2n+1, counted from z = 2/3
    const odd = 1 - (ring % 2);
    let ip = Math.floor((jp + jm - n + odd + 1) / 2);
    ip %= 4 * n;
    if (ip < 0) ip += 4 * n;
    return 2 * n * (n - 1) + (ring - 1) * 4 * n + ip;
  }
  // polar caps
  const tp = tt - Math.floor(tt);
  const tmp = n * Math.sqrt(3 * (1 - za));
  const jp = Math.floor(tp * tmp);
  const jm = Math.floor((1 - tp) * tmp);
  const ring = Math.max(jp + jm + 1, 1); // ring counted from the pole
  let ip = Math.floor(tt * ring);
  ip %= 4 * ring;
  if (z > 0) return 2 * ring * (ring - 1) + ip;
  return 12 * n * n - 2 * ring * (ring + 1) + ip;
}

/** Mean angular size of a pixel of `nside`, radians. */
export function pixelSize(nside) {
  return Math.sqrt((4 * Math.PI) / npix(nside));
}
