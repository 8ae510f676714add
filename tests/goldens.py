"""Golden values the tests share, each with how it was obtained (one place, not copied)."""

# Conv4-64 on 28x28x1 with a 5-way head, MACs per sample (REFERENCE.md §5, "measured here"), and
# by hand: 3x3 convolutions with 'same' padding and 2x2 max-pooling between them,
#   28²·64·9·1 + 14²·64·64·9 + 7²·64·64·9 + 3²·64·64·9 + 64·5
#   = 451,584 + 7,225,344 + 1,806,336 + 331,776 + 320.
CONV4_64_MACS = 28 * 28 * 64 * 9 * 1 + 14 * 14 * 64 * 64 * 9 + 7 * 7 * 64 * 64 * 9 + 3 * 3 * 64 * 64 * 9 + 64 * 5
assert CONV4_64_MACS == 9_815_360
