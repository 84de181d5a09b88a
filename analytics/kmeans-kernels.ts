/**
 * Source generator for the k-means kernels. The hot loops are emitted as JavaScript text
 * specialised for the problem's width d (feature loops unrolled into locals when d <= 32), its k
 * (the k centres held in locals when k·d <= 256) and the number of k-means++ trials T, then
 * compiled once per shape with `new Function` on the calling thread and evaluated from the same
 * text in every worker, so all threads run identical code. Specialisation roughly halves the time
 * of the distance loops against generic typed-array loops (no per-element bounds checks and
 * reloads of the centres).
 *
 * Floating-point contract (relied on by the tests): every squared distance is accumulated as
 * `e = 0; e += z_0²; e += z_1²; …` in feature order, exactly as a naive loop would; nearest-centre
 * searches scan centres in index order with strict `<`, so ties go to the lowest index.
 *
 * Kernels have the signature (ws, c0, c1) and process the rows of chunks [c0, c1). Layout of ws:
 * see `Ws` in kmeans.ts.
 */

/** Widths up to this are unrolled into locals. */
export const UNROLL_MAX_D = 32;
/** Centres are held in locals when k·d is at most this. */
export const CENTRE_LOCALS_MAX = 256;

export const KERNEL_NAMES = ["first", "kppStep", "kppFinal", "assignSums", "hamerly", "inertia"] as const;

/** acc slot of the k-means++ potential written by `first`. */
export const potSlot = (d: number): number => 2 * d + 1;

/**
 * JavaScript source of an array expression `[first, kppStep, …]` (in KERNEL_NAMES order) for
 * width d, k centres and up to tMax k-means++ trials.
 */
export function kernelSource(d: number, k: number, tMax: number): string {
  const un = d <= UNROLL_MAX_D;
  const centreLocals = un && k * d <= CENTRE_LOCALS_MAX;
  const candLocals = un && tMax * d <= CENTRE_LOCALS_MAX;
  const F = Array.from({ length: d }, (_, f) => f);
  const J = Array.from({ length: k }, (_, j) => j);
  const T = Array.from({ length: tMax }, (_, t) => t);

  /** `x0 = X[xo], …` assignments (unrolled mode only; the x's are declared by the caller). */
  const setX = (): string => (un ? `${F.map((f) => `x${f} = X[xo + ${f}];`).join(" ")}` : "");
  const declX = (): string => (un ? `let ${F.map((f) => `x${f} = 0`).join(", ")};` : "");
  const loadX = (): string => (un ? `const ${F.map((f) => `x${f} = X[xo + ${f}]`).join(", ")};` : "");
  /** Statements leaving in `out` the squared distance from row xo to arr[off..off+d). */
  const distArr = (out: string, arr: string, off: string): string =>
    un
      ? `let ${out} = 0; { let z; ${F.map((f) => `z = x${f} - ${arr}[${off} + ${f}]; ${out} += z * z;`).join(" ")} }`
      : `let ${out} = 0; for (let f = 0; f < ${d}; f++) { const z = X[xo + f] - ${arr}[${off} + f]; ${out} += z * z; }`;
  /** Same against locals `${prefix}${f}` (unrolled mode only). */
  const distLoc = (out: string, prefix: string): string =>
    `let ${out} = 0; { let z; ${F.map((f) => `z = x${f} - ${prefix}${f}; ${out} += z * z;`).join(" ")} }`;
  /** Locals `${prefix}${f} = arr[off + f]` (off may be an expression). */
  const loadLoc = (prefix: string, arr: string, off: string): string =>
    un ? `const ${F.map((f) => `${prefix}${f} = ${arr}[${off} + ${f}]`).join(", ")};` : "";
  /** Running nearest/second-nearest update with a candidate distance e of centre index jExpr. */
  const top2 = (e: string, jExpr: string): string =>
    `if (${e} < d1) { d2 = d1; d1 = ${e}; b = ${jExpr}; } else if (${e} < d2) d2 = ${e};`;
  /**
   * Statements computing b, d1, d2 (nearest index, nearest and second squared distances). With
   * `known`, the squared distance to centre `known.index` is already in `known.dist` and is
   * reused (it was computed the same way, so the result is unchanged).
   */
  const nearestTwo = (known?: { index: string; dist: string }): string => {
    let s = "let b = 0, d1 = Infinity, d2 = Infinity;\n";
    const dist = (j: string, viaLocals: boolean): string => {
      const compute = viaLocals ? distLoc("e", `c${j}_`) : distArr("e", "C", `j * ${d}`);
      if (known === undefined) return compute;
      return `let e; if (${j} === ${known.index}) e = ${known.dist}; else { ${compute.replace(/^let e = 0;/, "e = 0;")} }`;
    };
    if (centreLocals) {
      for (const j of J) s += `{ ${dist(String(j), true)} ${top2("e", String(j))} }\n`;
    } else {
      s += `for (let j = 0; j < ${k}; j++) { ${dist("j", false)} ${top2("e", "j")} }\n`;
    }
    return s;
  };
  const loadCentres = (): string => (centreLocals ? J.map((j) => loadLoc(`c${j}_`, "C", String(j * d))).join("\n") : "");
  const chunkRows = `const r0 = ch * ws.chunk; const r1 = Math.min(ws.n, r0 + ws.chunk);`;
  const header = `const X = ws.X, C = ws.C, A = ws.A, U = ws.U, L = ws.L, D = ws.D, acc = ws.acc, accW = ws.accW;`;

  // mode = P[5]: bit 1 = column statistics, bit 2 = k-means++ first centre (row 0 of C).
  // Statistics: acc[ch][f] = chunk mean of feature f, acc[ch][d+f] = chunk sum of squared
  // deviations from it (second sweep over the chunk, which is in cache), acc[ch][2d] = 1 if the
  // chunk holds a non-finite value. First centre: D = squared distance, labels 0,
  // acc[ch][2d+1] = potential Σ D.
  const first = `function first(ws, c0, c1) {
  ${header}
  const mode = ws.P[5] | 0, stats = (mode & 1) !== 0, kpp = (mode & 2) !== 0;
  ${loadLoc("w", "C", "0")}
  for (let ch = c0; ch < c1; ch++) {
    ${chunkRows}
    const o = ch * accW, cnt = r1 - r0;
    let pot = 0;
    ${un ? `let ${F.map((f) => `s${f} = 0`).join(", ")};` : `for (let f = 0; f < ${d}; f++) acc[o + f] = 0;`}
    for (let i = r0; i < r1; i++) {
      const xo = i * ${d};
      ${loadX()}
      if (stats) { ${un ? F.map((f) => `s${f} += x${f};`).join(" ") : `for (let f = 0; f < ${d}; f++) acc[o + f] += X[xo + f];`} }
      if (kpp) {
        ${un ? distLoc("e", "w") : distArr("e", "C", "0")}
        D[i] = e; A[i] = 0; pot += e;
      }
    }
    acc[o + ${2 * d + 1}] = pot;
    if (!stats) continue;
    ${un ? F.map((f) => `acc[o + ${f}] = s${f} / cnt;`).join(" ") : `for (let f = 0; f < ${d}; f++) acc[o + f] /= cnt;`}
    let bad = 0;
    for (let f = 0; f < ${d}; f++) { const m = acc[o + f]; if (m - m !== 0) bad = 1; }
    acc[o + ${2 * d}] = bad;
    if (bad !== 0) continue;
    ${
      un
        ? `${F.map((f) => `const m${f} = acc[o + ${f}];`).join(" ")}
    let ${F.map((f) => `q${f} = 0`).join(", ")};
    for (let i = r0; i < r1; i++) {
      const xo = i * ${d}; let z;
      ${F.map((f) => `z = X[xo + ${f}] - m${f}; q${f} += z * z;`).join(" ")}
    }
    ${F.map((f) => `acc[o + ${d + f}] = q${f};`).join(" ")}`
        : `for (let f = 0; f < ${d}; f++) acc[o + ${d} + f] = 0;
    for (let i = r0; i < r1; i++) {
      const xo = i * ${d};
      for (let f = 0; f < ${d}; f++) { const z = X[xo + f] - acc[o + f]; acc[o + ${d} + f] += z * z; }
    }`
    }
  }
}`;

  // One greedy k-means++ round, fused. Per row: a = A, its nearest chosen centre, and D, the
  // squared distance to it. (1) Apply centre p = P[0] (row p of C; skipped if p < 0): if
  // ‖c_p − c_a‖² = cc2[a] >= 4·D, c_p cannot be closer (triangle inequality); otherwise
  // D = min(D, ‖x − c_p‖²) and the label follows. (2) The T = P[1] trial candidates:
  // acc[ch][t] = Σ min(D, ‖x − cand_t‖²); a row is skipped when every candidate is pruned the
  // same way (candCC2[t][a] >= 4·D), otherwise all T distances are computed. Measured on 1M × 8,
  // k = 8 (one thread, 7 rounds): this all-or-nothing rule 259 ms; pruning each candidate
  // separately 283 ms; additionally pruning with candidate–candidate distances (32% fewer
  // distances) 310 ms; candidates read from the array instead of locals 296 ms. Branch-free
  // arithmetic wins over skipped work at this size.
  const kppStep = `function kppStep(ws, c0, c1) {
  ${header}
  const cand = ws.cand, cc = ws.candCC2, cc2 = ws.cc2, p = ws.P[0] | 0, T = ws.P[1] | 0, po = (p < 0 ? 0 : p) * ${d};
  ${loadLoc("w", "C", "po")}
  ${candLocals ? T.map((t) => loadLoc(`p${t}_`, "cand", String(t * d))).join("\n  ") : "const s = new Float64Array(" + tMax + ");"}
  for (let ch = c0; ch < c1; ch++) {
    ${chunkRows}
    ${candLocals ? `let ${T.map((t) => `s${t} = 0`).join(", ")};` : "s.fill(0);"}
    let base = 0;
    for (let i = r0; i < r1; i++) {
      let di = D[i], a = A[i];
      const xo = i * ${d};
      let loaded = false;
      ${declX()}
      if (p >= 0 && cc2[a] < 4 * di) {
        ${setX()}
        loaded = true;
        ${un ? distLoc("e", "w") : distArr("e", "C", "po")}
        if (e < di) { di = e; a = p; D[i] = e; A[i] = p; }
      }
      const lim = 4 * di;
      let t = 0;
      while (t < T && cc[t * ${k} + a] >= lim) t++;
      if (t === T) { base += di; continue; }
      if (!loaded) { ${setX()} }
      ${
        candLocals
          ? T.map((t) => `if (T > ${t}) { ${distLoc("e", `p${t}_`)} s${t} += e < di ? e : di; }`).join("\n      ")
          : `for (t = 0; t < T; t++) { ${distArr("e", "cand", `t * ${d}`)} s[t] += e < di ? e : di; }`
      }
    }
    const o = ch * accW;
    ${candLocals ? T.map((t) => `if (T > ${t}) acc[o + ${t}] = base + s${t};`).join(" ") : "for (let t = 0; t < T; t++) acc[o + t] = base + s[t];"}
  }
}`;

  // Last k-means++ step, fused with the first centre sums: applies the last centre p = P[0]
  // (as in kppStep), then sets the Hamerly bounds U = distance to the nearest seed (exact) and
  // L = 2·halfS[a] − U, a valid lower bound on the distance to every other seed since
  // ‖x − c_j‖ >= ‖c_j − c_a‖ − ‖x − c_a‖ (halfS = half the distance to the nearest other seed,
  // computed by the caller), and accumulates the per-chunk sums/counts of the labels. (Tracking
  // tighter lower bounds through the k-means++ rounds was measured: it costs more in those
  // rounds than it saves in the first Lloyd step.)
  const kppFinal = `function kppFinal(ws, c0, c1) {
  ${header}
  const S = ws.sums, N = ws.counts, cc2 = ws.cc2, halfS = ws.halfS, p = ws.P[0] | 0, po = p * ${d};
  ${loadLoc("w", "C", "po")}
  for (let ch = c0; ch < c1; ch++) {
    ${chunkRows}
    const so = ch * ${k * d}, co = ch * ${k};
    for (let q = 0; q < ${k * d}; q++) S[so + q] = 0;
    for (let j = 0; j < ${k}; j++) N[co + j] = 0;
    for (let i = r0; i < r1; i++) {
      let di = D[i], a = A[i];
      const xo = i * ${d};
      ${loadX()}
      if (cc2[a] < 4 * di) {
        ${un ? distLoc("e", "w") : distArr("e", "C", "po")}
        if (e < di) { di = e; a = p; A[i] = p; }
      }
      const u = Math.sqrt(di);
      U[i] = u; L[i] = 2 * halfS[a] - u;
      const ao = so + a * ${d};
      ${un ? F.map((f) => `S[ao + ${f}] += x${f};`).join(" ") : `for (let f = 0; f < ${d}; f++) S[ao + f] += X[xo + f];`}
      N[co + a] += 1;
    }
  }
}`;

  // Full assignment to all k centres and the per-chunk centre sums/counts, in one pass: labels,
  // exact upper bound (distance to the nearest centre) and exact lower bound (second nearest).
  const assignSums = `function assignSums(ws, c0, c1) {
  ${header}
  const S = ws.sums, N = ws.counts;
  ${loadCentres()}
  for (let ch = c0; ch < c1; ch++) {
    ${chunkRows}
    const so = ch * ${k * d}, co = ch * ${k};
    for (let q = 0; q < ${k * d}; q++) S[so + q] = 0;
    for (let j = 0; j < ${k}; j++) N[co + j] = 0;
    for (let i = r0; i < r1; i++) {
      const xo = i * ${d};
      ${loadX()}
      ${nearestTwo()}
      A[i] = b; U[i] = Math.sqrt(d1); L[i] = Math.sqrt(d2);
      const bo = so + b * ${d};
      ${un ? F.map((f) => `S[bo + ${f}] += x${f};`).join(" ") : `for (let f = 0; f < ${d}; f++) S[bo + f] += X[xo + f];`}
      N[co + b] += 1;
    }
  }
}`;

  // One Hamerly assignment step against C. Bounds are first loosened by the last centre shifts
  // (upper += shift of own centre; lower -= largest shift of any other centre); a row is
  // re-examined only if its upper bound exceeds max(lower, half the distance from its centre to
  // the nearest other centre). Moves update the per-chunk sums/counts; acc[ch][0] = moves.
  const hamerly = `function hamerly(ws, c0, c1) {
  ${header}
  const S = ws.sums, N = ws.counts, shift = ws.shift, halfS = ws.halfS;
  const maxS = ws.P[2], secS = ws.P[3], argS = ws.P[4] | 0;
  ${loadCentres()}
  for (let ch = c0; ch < c1; ch++) {
    ${chunkRows}
    const so = ch * ${k * d}, co = ch * ${k};
    let moved = 0;
    for (let i = r0; i < r1; i++) {
      const a = A[i];
      const u0 = U[i] + shift[a];
      const l = L[i] - (a === argS ? secS : maxS);
      const hs = halfS[a];
      const m = hs > l ? hs : l;
      if (u0 <= m) { U[i] = u0; L[i] = l; continue; }
      const xo = i * ${d}, ao = a * ${d};
      ${loadX()}
      ${distArr("s", "C", "ao")}
      const u = Math.sqrt(s);
      if (u <= m) { U[i] = u; L[i] = l; continue; }
      ${nearestTwo({ index: "a", dist: "s" })}
      U[i] = Math.sqrt(d1); L[i] = Math.sqrt(d2);
      if (b !== a) {
        const sa = so + ao, sb = so + b * ${d};
        ${
          un
            ? F.map((f) => `S[sa + ${f}] -= x${f}; S[sb + ${f}] += x${f};`).join(" ")
            : `for (let f = 0; f < ${d}; f++) { const v = X[xo + f]; S[sa + f] -= v; S[sb + f] += v; }`
        }
        N[co + a] -= 1; N[co + b] += 1; A[i] = b; moved++;
      }
    }
    acc[ch * accW] = moved;
  }
}`;

  // acc[ch][0] = Σ ‖x − C[label]‖².
  const inertia = `function inertia(ws, c0, c1) {
  ${header}
  for (let ch = c0; ch < c1; ch++) {
    ${chunkRows}
    let tot = 0;
    for (let i = r0; i < r1; i++) {
      const xo = i * ${d}, ao = A[i] * ${d};
      ${loadX()}
      ${distArr("e", "C", "ao")}
      tot += e;
    }
    acc[ch * accW] = tot;
  }
}`;

  const byName: Record<(typeof KERNEL_NAMES)[number], string> = { first, kppStep, kppFinal, assignSums, hamerly, inertia };
  return `[\n${KERNEL_NAMES.map((nm) => byName[nm]).join(",\n")}\n]`;
}

/** A compiled kernel: processes chunks [c0, c1) of the workspace. */
export type CompiledKernel = (ws: unknown, c0: number, c1: number) => void;

const compiled = new Map<string, CompiledKernel[]>();

/** Compiles (once per shape) the kernels for the calling thread. */
export function compileKernels(d: number, k: number, tMax: number): { source: string; kernels: CompiledKernel[] } {
  const source = kernelSource(d, k, tMax);
  let kernels = compiled.get(source);
  if (kernels === undefined) {
    kernels = new Function(`"use strict"; return ${source};`)() as CompiledKernel[];
    if (compiled.size > 64) compiled.clear();
    compiled.set(source, kernels);
  }
  return { source, kernels };
}
