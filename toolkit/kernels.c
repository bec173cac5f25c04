/* Compiled kernels of the right-hand side and of the exponential integrator (toolkit/kernels.py).

   Complex arrays are interleaved doubles (re, im), dense blocks column-major (Fortran), as in
   PETSc's dense matrices and the state vector.  A sparse n x n matrix A is held in diagonal
   (DIA) form: diagonal k has the offset off[k] = column - row and the coefficients
   cd[k*2n + 2i], cd[k*2n + 2i + 1] of the entry A[i, i + off[k]] (zero where i + off[k] is
   outside the matrix).  isreal[k] != 0 marks a diagonal whose entries are all real: its two
   doubles per row are then (Re, Re), so that the product is a real elementwise multiply of the
   interleaved data; isreal[k] == 2 marks a diagonal of zeros, which is skipped (e.g. the
   spin-flip diagonals of collinear spins along z).  A tight-binding lattice numbered site by site (two spinor orbitals per
   site) has few diagonals: 9 for a 3D cubic lattice with s-d coupling.

   Everything is blocked by rows (RB complex entries of the output in L1) and by columns, so that
   each output entry is written once and each input column is read from cache.  No temporaries,
   no allocation.  Outputs larger than qc_stream_min bytes are written with streaming
   (non-temporal) stores where AVX is available: they are not read into the cache before they
   are written, which saves a third of the memory traffic of a pass over a large block. */
#include <stddef.h>
#include <string.h>
#if defined(__AVX__) && defined(__FMA__)
#include <immintrin.h>
#define QC_STREAM 1
#endif

#define RB 512
#define NCB 4     /* columns of the left product per pass: each coefficient loaded once for all */

/* outputs of at least this many bytes are written with streaming stores (set from Python:
   toolkit.kernels.stream_min) */
long qc_stream_min = 32L << 20;

/* NCB for the Python side (the size of the halo work array: NCB extended columns) */
const int qc_ncb = NCB;

static inline long lmax(long a, long b) { return a > b ? a : b; }
static inline long lmin(long a, long b) { return a < b ? a : b; }

/* a[q] += sum_t c_t[q] x_t[q] for q < len (doubles) over up to 4 real terms at once: one load
   and store of the accumulator per 4 products */
static void real_terms(long len, double *restrict a, int nt, const double *const *c,
                       const double *const *x)
{
    int t = 0;
    for (; t + 4 <= nt; t += 4) {
        const double *restrict c0 = c[t], *restrict c1 = c[t + 1], *restrict c2 = c[t + 2],
                     *restrict c3 = c[t + 3];
        const double *restrict x0 = x[t], *restrict x1 = x[t + 1], *restrict x2 = x[t + 2],
                     *restrict x3 = x[t + 3];
        for (long q = 0; q < len; q++)
            a[q] += c0[q] * x0[q] + c1[q] * x1[q] + c2[q] * x2[q] + c3[q] * x3[q];
    }
    for (; t + 2 <= nt; t += 2) {
        const double *restrict c0 = c[t], *restrict c1 = c[t + 1];
        const double *restrict x0 = x[t], *restrict x1 = x[t + 1];
        for (long q = 0; q < len; q++)
            a[q] += c0[q] * x0[q] + c1[q] * x1[q];
    }
    for (; t < nt; t++) {
        const double *restrict c0 = c[t], *restrict x0 = x[t];
        for (long q = 0; q < len; q++)
            a[q] += c0[q] * x0[q];
    }
}

/* a[q] (complex, q < len) += c[q] x[q], complex c */
static void complex_term(long len, double *restrict a, const double *restrict c,
                         const double *restrict x)
{
    for (long q = 0; q < len; q++) {
        double cr = c[2 * q], ci = c[2 * q + 1], xr = x[2 * q], xi = x[2 * q + 1];
        a[2 * q] += cr * xr - ci * xi;
        a[2 * q + 1] += cr * xi + ci * xr;
    }
}

/* the same as real_terms for NCB columns at once (x and a of column cc at + cc dx, + cc da
   doubles): each coefficient is loaded once for all of them */
static void real_terms_cols(long len, double *restrict a, long da, int nt,
                            const double *const *c, const double *const *x, long dx)
{
    int t = 0;
    for (; t + 4 <= nt; t += 4) {
        const double *restrict c0 = c[t], *restrict c1 = c[t + 1], *restrict c2 = c[t + 2],
                     *restrict c3 = c[t + 3];
        const double *restrict x0 = x[t], *restrict x1 = x[t + 1], *restrict x2 = x[t + 2],
                     *restrict x3 = x[t + 3];
        for (long q = 0; q < len; q++) {
            double k0 = c0[q], k1 = c1[q], k2 = c2[q], k3 = c3[q];
#pragma GCC unroll 8
            for (int cc = 0; cc < NCB; cc++) {
                long o = q + cc * dx;
                a[q + cc * da] += k0 * x0[o] + k1 * x1[o] + k2 * x2[o] + k3 * x3[o];
            }
        }
    }
    for (; t < nt; t++) {
        const double *restrict c0 = c[t], *restrict x0 = x[t];
        for (long q = 0; q < len; q++) {
            double k0 = c0[q];
#pragma GCC unroll 8
            for (int cc = 0; cc < NCB; cc++)
                a[q + cc * da] += k0 * x0[q + cc * dx];
        }
    }
}

#define MAXD 64

/* acc[0:m) += A[i0 + r, :] x for r < m (rows i0 .. i0 + m of the n rows of A held here times the
   column x, whose entries x[xlo] .. x[xhi - 1] exist: [0, n) on one rank, a halo below and
   above the local rows under MPI):
   the left product, one row block, for nc = 1 or NCB columns (column cc of x at + cc dx
   doubles, its accumulator at + cc da).  The rows that every diagonal reaches are done with all real
   diagonals fused (real_terms); the few rows at the ends of the matrix diagonal by diagonal. */
static void dia_rows(long n, long xlo, long xhi, long i0, long m, int nd, const int *off,
                     const int *isreal, const double *cd, const double *x, double *acc, int nc,
                     long dx, long da)
{
    long lo_all = i0, hi_all = i0 + m;
    for (int k = 0; k < nd; k++) {
        if (isreal[k] == 2)
            continue;
        lo_all = lmax(lo_all, xlo - (long)off[k]);
        hi_all = lmin(hi_all, xhi - off[k]);
    }
    if (hi_all < lo_all)
        hi_all = lo_all;
    const double *c[MAXD], *xs[MAXD];
    int nr = 0;
    for (int k = 0; k < nd; k++) {
        if (isreal[k] == 2)
            continue;
        long o = off[k];
        long lo = lmax(i0, xlo - o), hi = lmin(i0 + m, xhi - o);
        const double *ck = cd + (size_t)k * 2 * n;
        /* the end pieces [lo, lo_all) and [hi_all, hi) of this diagonal */
        long pieces[2][2] = {{lo, lmin(lo_all, hi)}, {lmax(hi_all, lo), hi}};
        for (int col = 0; col < nc; col++) {
            const double *xc = x + col * dx;
            double *ac = acc + col * da;
            for (int p = 0; p < 2; p++) {
                long a = pieces[p][0], b = pieces[p][1];
                if (a >= b)
                    continue;
                if (isreal[k])
                    real_terms(2 * (b - a), ac + 2 * (a - i0), 1, (const double *[]){ck + 2 * a},
                               (const double *[]){xc + 2 * (a + o)});
                else
                    complex_term(b - a, ac + 2 * (a - i0), ck + 2 * a, xc + 2 * (a + o));
            }
            if (lo_all < hi_all && !isreal[k])
                complex_term(hi_all - lo_all, ac + 2 * (lo_all - i0), ck + 2 * lo_all,
                             xc + 2 * (lo_all + o));
        }
        if (lo_all < hi_all && isreal[k]) {
            c[nr] = ck + 2 * lo_all;
            xs[nr] = x + 2 * (lo_all + o);
            nr++;
        }
    }
    if (!nr)
        return;
    if (nc == NCB)
        real_terms_cols(2 * (hi_all - lo_all), acc + 2 * (lo_all - i0), da, nr, c, xs, dx);
    else
        real_terms(2 * (hi_all - lo_all), acc + 2 * (lo_all - i0), nr, c, xs);
}

/* a[q] += sum_t s_t x_t[q] for q < len (doubles), real scalars s_t, up to 4 terms at once */
static void scaled_terms(long len, double *restrict a, int nt, const double *s,
                         const double *const *x)
{
    int t = 0;
    for (; t + 4 <= nt; t += 4) {
        double s0 = s[t], s1 = s[t + 1], s2 = s[t + 2], s3 = s[t + 3];
        const double *restrict x0 = x[t], *restrict x1 = x[t + 1], *restrict x2 = x[t + 2],
                     *restrict x3 = x[t + 3];
        for (long q = 0; q < len; q++)
            a[q] += s0 * x0[q] + s1 * x1[q] + s2 * x2[q] + s3 * x3[q];
    }
    for (; t < nt; t++) {
        double s0 = s[t];
        const double *restrict x0 = x[t];
        for (long q = 0; q < len; q++)
            a[q] += s0 * x0[q];
    }
}

/* acc[0:m) -= (x A)[i0 .. i0 + m, j] for x with leading dimension ld and N columns and the
   N x N matrix A in diagonal form (cd: N rows per diagonal): column j of x A is
   sum_k x[:, j - off[k]] A[j - off[k], j]; real coefficients fused in groups (scaled_terms),
   complex ones one by one. */
static void right_terms(long N, long j, long i0, long m, long ld, int nd, const int *off,
                        const int *isreal, const double *cd, const double *x, double *acc)
{
    int nr = 0;
    double sc[MAXD];
    const double *xs[MAXD];
    for (int k = 0; k < nd; k++) {
        long col = j - off[k];          /* A[col, j] on diagonal k */
        if (col < 0 || col >= N || isreal[k] == 2)
            continue;
        double sr = cd[(size_t)k * 2 * N + 2 * col];
        double si = isreal[k] ? 0.0 : cd[(size_t)k * 2 * N + 2 * col + 1];
        if (sr == 0.0 && si == 0.0)
            continue;
        const double *xk = x + (size_t)col * 2 * ld + 2 * i0;
        if (si == 0.0) {
            sc[nr] = -sr;
            xs[nr++] = xk;
        } else {
            for (long q = 0; q < m; q++) {
                double xr = xk[2 * q], xi = xk[2 * q + 1];
                acc[2 * q] -= sr * xr - si * xi;
                acc[2 * q + 1] -= sr * xi + si * xr;
            }
        }
    }
    scaled_terms(2 * m, acc, nr, sc, xs);
}

/* o[q] = sum_t a[t] v[t][off + q] for q < len (one chunk of a combination) */
static void combine_chunk(long len, int nt, const double *const *v, size_t off, const double *a,
                          double *o)
{
    const double *v0 = v[0] + off;
    for (long q = 0; q < len; q++)
        o[q] = a[0] * v0[q];
    for (int t = 1; t < nt; t++) {
        const double *vt = v[t] + off;
        if (a[t] == 0.0)
            continue;
        for (long q = 0; q < len; q++)
            o[q] += a[t] * vt[q];
    }
}

/* dst[0:len) = src[0:len) (doubles, len even: complex entries), with streaming stores on the
   32-byte aligned part if stream != 0 */
static void store_chunk(double *restrict dst, const double *restrict src, long len, int stream)
{
#ifdef QC_STREAM
    if (stream && ((size_t)dst & 15) == 0) {    /* complex entries 16-byte aligned */
        long q = ((size_t)dst & 31) ? 2 : 0;        /* one complex entry to align */
        if (q > len)
            q = len;
        for (long p = 0; p < q; p++)
            dst[p] = src[p];
        for (; q + 4 <= len; q += 4)
            _mm256_stream_pd(dst + q, _mm256_loadu_pd(src + q));
        for (; q < len; q++)
            dst[q] = src[q];
        return;
    }
#else
    (void)stream;
#endif
    memcpy(dst, src, (size_t)len * sizeof(double));
}

#define CB 2048             /* doubles per row chunk: output chunks + inputs in L1/L2 */
#define MAXT 16             /* terms of a combination */

/* out[r, c] = sum_t coef[t][c * cstride] v[t][r, c] for r < nrows, c < ncol (complex v, out with
   leading dimension nrows; real coefficients, one per column, or one for all with cstride = 0).
   With out2 (not NULL) also out2 = sum_t coef2[t] v[t] in the same pass.  Each chunk is
   accumulated in a buffer and written after all its terms are read, so out and out2 may be any
   of the inputs. */
void qc_combine(long nrows, long ncol, int nt, const double *const *v,
                const double *const *coef, long cstride, double *out,
                const double *const *coef2, double *out2)
{
    long nd = 2 * nrows;
    double a[MAXT], b[MAXT], buf[CB], buf2[CB];
    int stream = 16.0 * (double)nrows * (double)ncol >= (double)qc_stream_min;
    for (long c = 0; c < ncol; c++) {
        size_t base = (size_t)c * nd;
        for (int t = 0; t < nt; t++) {
            a[t] = coef[t][c * cstride];
            b[t] = out2 ? coef2[t][c * cstride] : 0.0;
        }
        for (long r0 = 0; r0 < nd; r0 += CB) {
            long len = lmin(CB, nd - r0);
            combine_chunk(len, nt, v, base + r0, a, buf);
            if (out2)
                combine_chunk(len, nt, v, base + r0, b, buf2);
            store_chunk(out + base + r0, buf, len, stream);
            if (out2)
                store_chunk(out2 + base + r0, buf2, len, stream);
        }
    }
#ifdef QC_STREAM
    if (stream)
        _mm_sfence();
#endif
}

#define EB 1024           /* complex entries per chunk of an entrywise combination */

/* acc[q] (= or +=) c[q] v[q] for q < len: complex v and acc (interleaved), real c */
static void entry_term(long len, int first, const double *restrict c, const double *restrict v,
                       double *restrict acc)
{
    if (first)
        for (long q = 0; q < len; q++) {
            acc[2 * q] = c[q] * v[2 * q];
            acc[2 * q + 1] = c[q] * v[2 * q + 1];
        }
    else
        for (long q = 0; q < len; q++) {
            acc[2 * q] += c[q] * v[2 * q];
            acc[2 * q + 1] += c[q] * v[2 * q + 1];
        }
}

/* acc[q] (= or +=) c[idx[q]] v[q] for q < len: the coefficients from a table */
static void entry_term_idx(long len, int first, const double *restrict c,
                           const unsigned short *restrict idx, const double *restrict v,
                           double *restrict acc)
{
    if (first)
        for (long q = 0; q < len; q++) {
            double k = c[idx[q]];
            acc[2 * q] = k * v[2 * q];
            acc[2 * q + 1] = k * v[2 * q + 1];
        }
    else
        for (long q = 0; q < len; q++) {
            double k = c[idx[q]];
            acc[2 * q] += k * v[2 * q];
            acc[2 * q + 1] += k * v[2 * q + 1];
        }
}

/* out[q] = sum_t coef[t][q] v[t][q] for q < n: complex v and out, one real coefficient per entry
   (the second-tier matrices of the auxiliary modes: every entry has its own rate).  With idx
   (not NULL) coef[t] is a table and the coefficient of entry q is coef[t][idx[q]] (few distinct
   rates: 2 bytes per entry instead of 8 per term).  With out2 (not NULL) also out2 =
   sum_t coef2[t][q] v[t][q] in the same pass.  Each chunk of EB entries is accumulated in a
   buffer and written after all its terms are read, so out and out2 may be any of the
   inputs. */
void qc_combine_entries(long n, int nt, const double *const *v, const double *const *coef,
                        double *out, const double *const *coef2, double *out2,
                        const unsigned short *idx)
{
    double acc[2 * EB], acc2[2 * EB];
    int stream = 16.0 * (double)n >= (double)qc_stream_min;
    for (long s = 0; s < n; s += EB) {
        long len = lmin(EB, n - s);
        for (int t = 0; t < nt; t++) {
            if (idx) {
                entry_term_idx(len, t == 0, coef[t], idx + s, v[t] + 2 * s, acc);
                if (out2)
                    entry_term_idx(len, t == 0, coef2[t], idx + s, v[t] + 2 * s, acc2);
            } else {
                entry_term(len, t == 0, coef[t] + s, v[t] + 2 * s, acc);
                if (out2)
                    entry_term(len, t == 0, coef2[t] + s, v[t] + 2 * s, acc2);
            }
        }
        store_chunk(out + 2 * s, acc, 2 * len, stream);
        if (out2)
            store_chunk(out2 + 2 * s, acc2, 2 * len, stream);
    }
#ifdef QC_STREAM
    if (stream)
        _mm_sfence();
#endif
}

/* Copy column c of the halo-extended x (lower halo xl: hl rows, local x: n rows with leading
   dimension ldx, upper halo xu: hu rows; halos column-major with leading dimensions hl, hu) into
   ext (hl + n + hu complex entries). */
static void extend_column(long c, long n, const double *x, long ldx, const double *xl, long hl,
                          const double *xu, long hu, double *ext)
{
    const double *a = xl + (size_t)c * 2 * hl, *b = x + (size_t)c * 2 * ldx,
                 *u = xu + (size_t)c * 2 * hu;
    for (long q = 0; q < 2 * hl; q++)
        ext[q] = a[q];
    for (long q = 0; q < 2 * n; q++)
        ext[2 * hl + q] = b[q];
    for (long q = 0; q < 2 * hu; q++)
        ext[2 * (hl + n) + q] = u[q];
}

/* The input of a group of nc columns c, c + cs, ... of x (leading dimension ldx) for
   dia_rows: x itself, or, with ext (under MPI), the columns extended by their halos xl, xu into
   ext (le = hl + n + hu complex entries each).  *dx: doubles between the group's columns. */
static const double *group_input(long c, int nc, long cs, long n, const double *x, long ldx,
                                 const double *xl, long hl, const double *xu, long hu,
                                 double *ext, long *dx)
{
    if (!ext) {
        *dx = 2 * ldx * cs;
        return x + (size_t)c * 2 * ldx;
    }
    long le = hl + n + hu;
    for (int cc = 0; cc < nc; cc++)
        extend_column(c + cc * cs, n, x, ldx, xl, hl, xu, hu, ext + (size_t)cc * 2 * le);
    *dx = 2 * le;
    return ext + 2 * hl;
}

/* ys[q] = alpha ac[q] + (dr_q + i ki) xs[q] for q < m complex entries, dr_q = kr + radd[q]
   (radd NULL: kr): the left product's output, with streaming stores if stream != 0 (on the
   32-byte aligned part; the others as ordinary stores) */
static void left_output(long m, const double *restrict ac, const double *restrict xs,
                        double *restrict ys, double alpha_re, double alpha_im, double kr,
                        double ki, const double *radd, int stream)
{
    long q = 0;
#ifdef QC_STREAM
    if (stream && ((size_t)ys & 15) == 0) {     /* complex entries 16-byte aligned */
        if ((size_t)ys & 31)
            q = 1;                       /* complex entries are 16 bytes: one to align */
        for (long p = 0; p < q; p++) {
            double ar = ac[2 * p], ai = ac[2 * p + 1], dr = kr + (radd ? radd[p] : 0.0);
            double xr = xs[2 * p], xi = xs[2 * p + 1];
            ys[2 * p] = alpha_re * ar - alpha_im * ai + dr * xr - ki * xi;
            ys[2 * p + 1] = alpha_re * ai + alpha_im * ar + dr * xi + ki * xr;
        }
        /* lanes (re, im, re, im) of two entries: (ar, ai) alpha = alpha_re (ar, ai) +
           alpha_im (-ai, ar); likewise i ki x */
        __m256d are = _mm256_set1_pd(alpha_re);
        __m256d aim = _mm256_set_pd(alpha_im, -alpha_im, alpha_im, -alpha_im);
        __m256d kim = _mm256_set_pd(ki, -ki, ki, -ki);
        for (; q + 2 <= m; q += 2) {
            __m256d av = _mm256_loadu_pd(ac + 2 * q), xv = _mm256_loadu_pd(xs + 2 * q);
            __m256d dr = radd ? _mm256_set_pd(kr + radd[q + 1], kr + radd[q + 1], kr + radd[q],
                                              kr + radd[q])
                              : _mm256_set1_pd(kr);
            __m256d r = _mm256_mul_pd(are, av);
            r = _mm256_fmadd_pd(aim, _mm256_permute_pd(av, 5), r);
            r = _mm256_fmadd_pd(dr, xv, r);
            r = _mm256_fmadd_pd(kim, _mm256_permute_pd(xv, 5), r);
            _mm256_stream_pd(ys + 2 * q, r);
        }
    }
#else
    (void)stream;
#endif
    for (; q < m; q++) {
        double ar = ac[2 * q], ai = ac[2 * q + 1], dr = kr + (radd ? radd[q] : 0.0);
        double xr = xs[2 * q], xi = xs[2 * q + 1];
        ys[2 * q] = alpha_re * ar - alpha_im * ai + dr * xr - ki * xi;
        ys[2 * q + 1] = alpha_re * ai + alpha_im * ar + dr * xi + ki * xr;
    }
}

/* qc_dia_left for the n local rows of a row-distributed A and x under MPI: the rows of x below
   and above the local ones come from the halos xl (hl rows) and xu (hu rows) of the neighbouring
   ranks.  Each column is extended into ext (NCB (hl + n + hu) complex entries, in cache) and
   multiplied there.  Without ext (NULL: all rows of A are here) x is multiplied in place.
   With sum, the columns are taken in groups of NCB adjacent sum columns k0 .. k0 + NCB (all c
   with c % nsum among them, then the next group): those sum columns stay in cache while the
   columns are added to them. */
void qc_dia_left_halo(long n, long ncol, int nd, const int *off, const int *isreal,
                      const double *cd, const double *x, long ldx, const double *xl, long hl,
                      const double *xu, long hu, double *y, long ldy, double alpha_re,
                      double alpha_im, const double *radd, const double *coef, double *sum,
                      long nsum, double *ext)
{
    double acc[2 * NCB * RB];
    /* column c = p ks + k (k < ks, p < np): groups of NCB adjacent columns k0 .. k0 + NCB of
       one p, for p = 0 .. np, then the next k0; the sum's columns k0 .. k0 + NCB stay in cache
       over the p loop */
    if (ncol <= 0)
        return;
    long ks = sum ? nsum : ncol, np = ncol / ks;
    int stream = (double)n * (double)ncol * 16.0 >= (double)qc_stream_min;
    for (long k0 = 0; k0 < ks; k0 += NCB) {
        long nk = lmin(NCB, ks - k0);
        /* NCB adjacent columns k0 .. k0 + NCB of each p; fewer than NCB sum columns left: NCB
           poles of one sum column at a time (columns ks apart), a remainder one by one */
        long kl = nk == NCB ? k0 + 1 : k0 + nk;
        for (long k = k0; k < kl; k++) {
            long cs = nk == NCB ? 1 : ks;             /* columns between the group's columns */
            int nc;
            for (long p = 0; p < np; p += (nk == NCB ? 1 : nc)) {
                nc = (nk == NCB || p + NCB <= np) ? NCB : 1;
                long c = p * ks + k;                  /* the group's columns: c + cc cs */
                long dx;                              /* what the diagonals multiply: */
                const double *xin = group_input(c, nc, cs, n, x, ldx, xl, hl, xu, hu, ext, &dx);
                for (long i0 = 0; i0 < n; i0 += RB) {
                    long m = lmin(RB, n - i0);
                    for (long q = 0; q < 2 * NCB * RB; q++)
                        acc[q] = 0.0;
                    dia_rows(n, -hl, n + hu, i0, m, nd, off, isreal, cd, xin, acc, nc, dx,
                             2 * RB);
                    for (int cc = 0; cc < nc; cc++) {
                        long col = c + cc * cs;
                        const double *xs = x + (size_t)col * 2 * ldx + 2 * i0;
                        left_output(m, acc + cc * 2 * RB, xs,
                                    y + (size_t)col * 2 * ldy + 2 * i0, alpha_re, alpha_im,
                                    coef ? coef[2 * col] : 0.0, coef ? coef[2 * col + 1] : 0.0,
                                    radd ? radd + i0 : NULL, stream);
                        if (sum) {
                            double *restrict sc = sum + (size_t)(col % ks) * 2 * n + 2 * i0;
                            for (long q = 0; q < 2 * m; q++)
                                sc[q] += xs[q];
                        }
                    }
                }
            }
        }
    }
#ifdef QC_STREAM
    if (stream)
        _mm_sfence();                   /* the streaming stores are visible to the caller */
#endif
}

/* y[:, c] = alpha (A x[:, c]) + (radd[i] + coef[c]) x[i, c] for c < ncol, i < n.
   radd: n reals or NULL; coef: ncol complex or NULL; ldx, ldy: leading dimensions (complex
   entries).  If sum is not NULL, also sum[:, c % nsum] += x[:, c] (n x nsum, leading dimension
   n: e.g. the sum over the poles of a lead's Padé blocks, read in the same pass).  y must not
   overlap x or sum. */
void qc_dia_left(long n, long ncol, int nd, const int *off, const int *isreal, const double *cd,
                 const double *x, long ldx, double *y, long ldy, double alpha_re,
                 double alpha_im, const double *radd, const double *coef, double *sum,
                 long nsum)
{
    qc_dia_left_halo(n, ncol, nd, off, isreal, cd, x, ldx, NULL, 0, NULL, 0, y, ldy, alpha_re,
                     alpha_im, radd, coef, sum, nsum, NULL);
}

/* -i (A x - x A) on the n local rows of the N x N row-distributed x under MPI: A x from the
   local rows' diagonals (nd, off, isreal, cd; the halos of x as in qc_dia_left_halo), x A from
   the diagonals of the whole A (ndf, offf, isrealf, cdf: N rows, replicated; column j of x A
   combines the local columns j - offf[k]).  ext: NCB (hl + n + hu) complex entries, or NULL when
   all rows are here (then the local and the whole diagonals are the same). */
void qc_dia_commutator_halo(long n, long N, int nd, const int *off, const int *isreal,
                            const double *cd, int ndf, const int *offf, const int *isrealf,
                            const double *cdf, const double *x, const double *xl, long hl,
                            const double *xu, long hu, double *y, double *ext)
{
    double acc[2 * NCB * RB], out[2 * RB];
    int stream = (double)n * (double)N * 16.0 >= (double)qc_stream_min;
    for (long j0 = 0; j0 < N; j0 += NCB) {
        long nj = lmin(NCB, N - j0);
        /* A x for NCB columns in one pass (each coefficient loaded once for all), a remainder
           column by column; x A column by column */
        for (long g = 0; g < nj; g += (nj == NCB ? NCB : 1)) {
            int nc = nj == NCB ? NCB : 1;
            long j = j0 + g, dx;
            const double *xin = group_input(j, nc, 1, n, x, n, xl, hl, xu, hu, ext, &dx);
            for (long i0 = 0; i0 < n; i0 += RB) {
                long m = lmin(RB, n - i0);
                for (long q = 0; q < 2 * NCB * RB; q++)
                    acc[q] = 0.0;
                dia_rows(n, -hl, n + hu, i0, m, nd, off, isreal, cd, xin, acc, nc, dx, 2 * RB);
                for (int cc = 0; cc < nc; cc++) {
                    double *ac = acc + cc * 2 * RB;
                    right_terms(N, j + cc, i0, m, n, ndf, offf, isrealf, cdf, x, ac);
                    for (long q = 0; q < m; q++) {      /* -i (a + ib) = b - ia */
                        out[2 * q] = ac[2 * q + 1];
                        out[2 * q + 1] = -ac[2 * q];
                    }
                    store_chunk(y + (size_t)(j + cc) * 2 * n + 2 * i0, out, 2 * m, stream);
                }
            }
        }
    }
#ifdef QC_STREAM
    if (stream)
        _mm_sfence();
#endif
}

/* y = -i (A x - x A) for the n x n column-major x (the coherent term -i [H, rho]); column j of
   x A is sum_k x[:, j - off[k]] A[j - off[k], j].  y must not overlap x.  For Hermitian A and
   x, qc_dia_commutator_hermitian is faster. */
void qc_dia_commutator(long n, int nd, const int *off, const int *isreal, const double *cd,
                       const double *x, double *y)
{
    qc_dia_commutator_halo(n, n, nd, off, isreal, cd, nd, off, isreal, cd, x, NULL, 0, NULL, 0,
                           y, NULL);
}

#define TT 32          /* tile of the anti-Hermitian combination: two tiles in L1 */

/* y = -i (A x - (A x)^dag) = -i [A, x] for Hermitian A and Hermitian x (n x n, column-major;
   x A = (A x)^dag): the left product y = A x (the x A of qc_dia_commutator reads columns of x
   up to the largest offset apart, from beyond L2), then in place, tile pair by tile pair,
   y_ij = -i (z_ij - conj z_ji), which is exactly Hermitian.  y must not overlap x. */
void qc_dia_commutator_hermitian(long n, int nd, const int *off, const int *isreal,
                                 const double *cd, const double *x, double *y)
{
    qc_dia_left_halo(n, n, nd, off, isreal, cd, x, n, NULL, 0, NULL, 0, y, n, 1.0, 0.0, NULL,
                     NULL, NULL, 1, NULL);
    for (long bj = 0; bj < n; bj += TT) {
        long je = lmin(bj + TT, n);
        for (long bi = 0; bi <= bj; bi += TT) {
            long ie = lmin(bi + TT, n);
            for (long j = bj; j < je; j++) {
                double *restrict cj = y + (size_t)j * 2 * n;      /* z[:, j] */
                long iend = (bi == bj) ? j : ie;                   /* i < j in a diagonal tile */
                for (long i = bi; i < iend; i++) {
                    double *t = y + (size_t)i * 2 * n + 2 * j;     /* z[j, i] */
                    double ar = cj[2 * i], ai = cj[2 * i + 1], br = t[0], bim = t[1];
                    /* -i (a - conj b) = (ai + bi) + i (br - ar); its conjugate at (j, i) */
                    cj[2 * i] = ai + bim;
                    cj[2 * i + 1] = br - ar;
                    t[0] = ai + bim;
                    t[1] = ar - br;
                }
                if (bi == bj) {                                    /* -i (a - conj a) = 2 ai */
                    cj[2 * j] = 2.0 * cj[2 * j + 1];
                    cj[2 * j + 1] = 0.0;
                }
            }
        }
    }
}

/* The second tier of the auxiliary-mode leads (integrators/aux_rhs.py) in one pass: with the
   complex mode energies zy (ny), kap (nx), zeta (nu) and, if full == 0, only the imaginary
   parts of the rates,
     fOm[y, x] = -i (zy_y - kap_x) Om[y, x] + PR[yc_y, x]
     fTh[y, z] = -i (zy_y - conj zy_z) Th[y, z] + PL[yc_y, z] - conj PL[yc_z, y]
     fK[u, y]  = -i (zeta_u - conj zy_y) K[u, y] + conj PR[yc_y, ubar_u]
   (row-major Om (ny, nx), Th (ny, ny), K (nu, ny), PR (nch, nx), PL (nch, ny); complex
   interleaved): the rates are formed from the energies, not read from per-entry arrays. */
static inline void rate_times(double ar, double ai, int full, const double *v, double *acc)
{
    /* acc = (-i a) v with a = ar + i ai: -i a = ai - i ar; without full only i Im(-i a) =
       -i ar */
    double rr = full ? ai : 0.0, ri = -ar;
    acc[0] = rr * v[0] - ri * v[1];
    acc[1] = rr * v[1] + ri * v[0];
}

void qc_second_tier(long ny, long nx, long nu, const double *zy, const double *kap,
                    const double *zeta, int full, const double *Om, const double *Th,
                    const double *K, const double *PR, const double *PL, const long *yc,
                    const long *ubar, double *fOm, double *fTh, double *fK)
{
    double a[2];
    for (long y = 0; y < ny; y++) {
        const double *pr = PR + 2 * yc[y] * nx, *pl = PL + 2 * yc[y] * ny;
        for (long x = 0; x < nx; x++) {
            size_t q = 2 * ((size_t)y * nx + x);
            rate_times(zy[2 * y] - kap[2 * x], zy[2 * y + 1] - kap[2 * x + 1], full, Om + q, a);
            fOm[q] = a[0] + pr[2 * x];
            fOm[q + 1] = a[1] + pr[2 * x + 1];
        }
        for (long z = 0; z < ny; z++) {
            size_t q = 2 * ((size_t)y * ny + z);
            const double *pz = PL + 2 * (yc[z] * ny + y);
            rate_times(zy[2 * y] - zy[2 * z], zy[2 * y + 1] + zy[2 * z + 1], full, Th + q, a);
            fTh[q] = a[0] + pl[2 * z] - pz[0];
            fTh[q + 1] = a[1] + pl[2 * z + 1] + pz[1];
        }
    }
    for (long u = 0; u < nu; u++) {
        for (long y = 0; y < ny; y++) {
            size_t q = 2 * ((size_t)u * ny + y);
            const double *p = PR + 2 * (yc[y] * nx + ubar[u]);
            rate_times(zeta[2 * u] - zy[2 * y], zeta[2 * u + 1] + zy[2 * y + 1], full, K + q, a);
            fK[q] = a[0] + p[0];
            fK[q + 1] = a[1] - p[1];
        }
    }
}
