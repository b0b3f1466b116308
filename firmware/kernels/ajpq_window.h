/* ajpq_window.h - the reference kernels' window arithmetic, exact and without a branch per tap.
 *
 * A convolution window is clipped to the input once per output (not tap by tap), and its
 * products are summed in int32 over runs of at most AJPQ_I32_PRODUCTS before they join the
 * int64 accumulator: |int16 * int8| <= 2^22, and 511 such products cannot overflow int32, so
 * the result is the int64 sum, exactly, for every int16 input.
 */
#ifndef AJPQ_WINDOW_H
#define AJPQ_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#define AJPQ_I32_PRODUCTS 511

/* The part of a kernel's window that lies inside the input: `rows` x `width` taps (taps in
 * all; 0 when the window lies wholly in the padding), the first at offset `at` of an input
 * plane and at offset `tap` of the kernel. */
typedef struct {
    int32_t rows, width, taps;
    size_t at, tap;
} ajpq_window_t;

static inline int32_t ajpq_min_i32(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

/* The window whose kernel tap (0, 0) sits at input (y0, x0), negative in the padding. */
static inline ajpq_window_t ajpq_window(int32_t y0, int32_t x0, int32_t kernel_h,
                                        int32_t kernel_w, int32_t in_height, int32_t in_width)
{
    int32_t ky = y0 < 0 ? -y0 : 0;
    int32_t kx = x0 < 0 ? -x0 : 0;
    ajpq_window_t win = {0, 0, 0, 0, 0};
    win.rows = ajpq_min_i32(kernel_h, in_height - y0) - ky;
    win.width = ajpq_min_i32(kernel_w, in_width - x0) - kx;
    if (win.rows <= 0 || win.width <= 0) {
        win.rows = win.width = 0;
        return win;
    }
    win.taps = win.rows * win.width;
    win.at = (size_t)(y0 + ky) * (size_t)in_width + (size_t)(x0 + kx);
    win.tap = (size_t)(ky * kernel_w + kx);
    return win;
}

/* Sum of x[i] * w[i] over n products, n <= AJPQ_I32_PRODUCTS (exact in int32). */
static inline int32_t ajpq_dot_i32(const int16_t *x, const int8_t *w, int32_t n)
{
    int32_t sum = 0;
    for (int32_t i = 0; i < n; ++i) {
        sum += (int32_t)x[i] * (int32_t)w[i];
    }
    return sum;
}

/* Sum of x[i] * w[i] over any n, exact: int32 runs of AJPQ_I32_PRODUCTS into int64. */
static inline int64_t ajpq_dot(const int16_t *x, const int8_t *w, int32_t n)
{
    int64_t acc = 0;
    for (int32_t i = 0; i < n; i += AJPQ_I32_PRODUCTS) {
        acc += ajpq_dot_i32(x + i, w + i, ajpq_min_i32(AJPQ_I32_PRODUCTS, n - i));
    }
    return acc;
}

/* A window's sum, x at its first input element (rows in_width apart), w at its first tap
 * (rows kernel_w apart), for a window of at most AJPQ_I32_PRODUCTS taps (exact in int32). */
static inline int32_t ajpq_window_dot_i32(const ajpq_window_t *win, const int16_t *x,
                                          int32_t in_width, const int8_t *w, int32_t kernel_w)
{
    int32_t sum = 0;
    for (int32_t r = 0; r < win->rows; ++r, x += in_width, w += kernel_w) {
        sum += ajpq_dot_i32(x, w, win->width);
    }
    return sum;
}

/* The window's sum over one input plane against one kernel, for a window of any size,
 * exact: int32 for up to AJPQ_I32_PRODUCTS taps, else row by row in int32 runs (ajpq_dot). */
static inline int64_t ajpq_window_dot(const ajpq_window_t *win, const int16_t *plane,
                                      int32_t in_width, const int8_t *kernel, int32_t kernel_w)
{
    const int16_t *x = plane + win->at;
    const int8_t *w = kernel + win->tap;
    if (win->taps <= AJPQ_I32_PRODUCTS) {
        return ajpq_window_dot_i32(win, x, in_width, w, kernel_w);
    }
    int64_t acc = 0;
    for (int32_t r = 0; r < win->rows; ++r, x += in_width, w += kernel_w) {
        acc += ajpq_dot(x, w, win->width);
    }
    return acc;
}

#endif /* AJPQ_WINDOW_H */
