"""Philox4x32-10 against the Random123 known-answer vectors; the documented counter mapping;
uniform, normal and bernoulli_mask: the same values for any thread count, offset slicing,
moments within tolerances derived from the sample size; the errors for refused arguments."""

import math

import numpy as np
import pytest
from symdiff.lowering import native, random

DTYPES = [np.float32, np.float64]
# Every distribution as f(seed, offset, shape, dtype).
DISTRIBUTIONS = {
    "uniform": random.uniform,
    "normal": random.normal,
    "bernoulli": lambda seed, offset, shape, dtype: random.bernoulli_mask(seed, offset, shape, 0.3, dtype),
}

# Random123 kat_vectors: philox4x32 10, counter (4 words), key (2 words) -> output (4 words).
KAT = [
    (
        (0x00000000, 0x00000000, 0x00000000, 0x00000000),
        (0x00000000, 0x00000000),
        (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8),
    ),
    (
        (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF),
        (0xFFFFFFFF, 0xFFFFFFFF),
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
    ),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("counter,key,expected", KAT, ids=["zeros", "ones", "pi"])
def test_known_answer_vectors(counter, key, expected):
    assert random.philox4x32(counter, key) == expected
    assert random.philox4x32(list(counter), np.array(key, np.uint32)) == expected


def _block(seed, index):
    return random.philox4x32((index & 0xFFFFFFFF, index >> 32, 0, 0), (seed & 0xFFFFFFFF, seed >> 32))


@pytest.mark.parametrize("offset", [0, 5, 2**34 - 3])
def test_values_follow_the_documented_counter_mapping(offset):
    """Element g: block g // L with counter (low word, high word, 0, 0), key (low, high) of the seed."""
    seed = 0x0123456789ABCDEF
    u32 = random.uniform(seed, offset, 8, np.float32)
    u64 = random.uniform(seed, offset, 8, np.float64)
    mask = random.bernoulli_mask(seed, offset, 8, 0.5, np.float32)
    for i in range(8):
        g = offset + i
        word = _block(seed, g // 4)[g % 4]
        assert u32[i] == (word >> 8) * 2.0**-24
        assert mask[i] == (word < 2**31)
        hi, lo = _block(seed, g // 2)[2 * (g % 2) : 2 * (g % 2) + 2]
        assert u64[i] == (((hi << 32) | lo) >> 11) * 2.0**-53


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_results_do_not_depend_on_the_thread_count(name, dtype):
    draw = DISTRIBUTIONS[name]
    before = native.num_threads()
    try:
        results = []
        for n in (1, 2):
            native.set_num_threads(n)
            results.append(draw(42, 3, (1001, 103), dtype))  # above the parallel threshold, odd length
    finally:
        native.set_num_threads(before)
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_offset_k_continues_the_stream_at_element_k(name, dtype):
    draw = DISTRIBUTIONS[name]
    n = 20_011
    full = draw(7, 0, n, dtype)
    for k in (1, 2, 3, 4, 5, 17, 4097, n - 1, n):
        np.testing.assert_array_equal(draw(7, k, n - k, dtype), full[k:])
    np.testing.assert_array_equal(draw(7, 3, (5, 7), dtype).ravel(), full[3:38])
    # Across the carry into the counter's high word.
    start = 4 * 2**32 - 9
    long = draw(7, start, 40, dtype)
    np.testing.assert_array_equal(draw(7, start + 13, 27, dtype), long[13:])


@pytest.mark.parametrize("dtype", DTYPES)
def test_uniform_range_and_moments(dtype):
    n = 1_000_000
    u = random.uniform(2024, 0, n, dtype)
    assert u.dtype == dtype and u.shape == (n,)
    assert u.min() >= 0 and u.max() < 1
    u64 = u.astype(np.float64)
    # Five standard errors: Var(mean) = (1/12)/n; Var(sample variance) ~ (mu4 - sigma^4)/n = (1/80 - 1/144)/n.
    assert abs(u64.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    assert abs(u64.var() - 1 / 12) < 5 * math.sqrt((1 / 80 - 1 / 144) / n)
    # Resolution: float32 values are multiples of 2^-24, float64 of 2^-53.
    step = 2.0**-24 if dtype == np.float32 else 2.0**-53
    assert np.all(np.floor(u64[:1000] / step) * step == u64[:1000])


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_moments(dtype):
    n = 1_000_000
    z = random.normal(2025, 0, n, dtype)
    assert z.dtype == dtype and np.all(np.isfinite(z))
    z64 = z.astype(np.float64)
    # Var(mean) = 1/n; Var(sample variance) ~ (mu4 - sigma^4)/n = 2/n; mu4 = 3 within its own spread (96/n).
    assert abs(z64.mean()) < 5 * math.sqrt(1 / n)
    assert abs(z64.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs((z64**4).mean() - 3) < 5 * math.sqrt(96 / n)
    assert abs(np.mean(z64 < 1.0) - 0.8413447460685429) < 5 * math.sqrt(0.84 * 0.16 / n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_bernoulli_keep_fraction(p, dtype):
    n = 500_000
    mask = random.bernoulli_mask(11, 0, n, p, dtype)
    assert mask.dtype == dtype
    assert set(np.unique(mask).tolist()) <= {0.0, 1.0}
    assert abs(mask.mean() - p) <= 5 * math.sqrt(p * (1 - p) / n)  # exact for p = 0 and p = 1
    other = random.bernoulli_mask(11, 0, n, p, np.float64 if dtype == np.float32 else np.float32)
    np.testing.assert_array_equal(mask, other)  # the same mask for both dtypes


def test_seeds_give_different_streams():
    a = random.uniform(1, 0, 1000, np.float64)
    for seed in (2, 1 + 2**32, 2**64 - 1):
        assert not np.array_equal(a, random.uniform(seed, 0, 1000, np.float64))


def test_shapes():
    assert random.uniform(0, 0, (), np.float32).shape == ()
    assert random.uniform(0, 0, (3, 0, 2), np.float32).shape == (3, 0, 2)
    assert random.normal(0, 0, np.int64(5), np.float64).shape == (5,)
    assert random.normal(0, 0, [2, np.int32(3)], "float32").shape == (2, 3)
    assert random.uniform(2**64 - 1, 2**64 - 10, 10, np.float64).shape == (10,)  # the very end of the stream


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: random.uniform(-1, 0, 3), ValueError, r"uniform\(seed\): must be in \[0, 2\*\*64\), got -1"),
        (lambda: random.uniform(2**64, 0, 3), ValueError, r"uniform\(seed\): must be in \[0, 2\*\*64\)"),
        (
            lambda: random.uniform(1.5, 0, 3),
            TypeError,
            r"uniform\(seed\): expected an int, got <class 'float'>",
        ),
        (lambda: random.uniform(True, 0, 3), TypeError, r"uniform\(seed\): expected an int"),
        (lambda: random.normal(0, -2, 3), ValueError, r"normal\(offset\): must be in \[0, 2\*\*64\), got -2"),
        (
            lambda: random.normal(0, 2**64 - 2, 3),
            ValueError,
            r"normal\(offset\): offset \+ count runs past the end",
        ),
        (
            lambda: random.uniform(0, 0, (3, -1)),
            ValueError,
            r"uniform\(shape\): must be in \[0, 2\*\*62\], got -1",
        ),
        (
            lambda: random.uniform(0, 0, "3"),
            TypeError,
            r"uniform\(shape\): expected an int or a sequence of ints",
        ),
        (
            lambda: random.uniform(0, 0, (2**40, 2**40)),
            ValueError,
            r"uniform\(shape\): .* has too many elements",
        ),
        (
            lambda: random.uniform(0, 0, 3, np.int32),
            TypeError,
            r"uniform\(dtype\): expected float32 or float64, got int32",
        ),
        (
            lambda: random.normal(0, 0, 3, np.float16),
            TypeError,
            r"normal\(dtype\): expected float32 or float64",
        ),
        (
            lambda: random.normal(0, 0, 3, "no-such-type"),
            TypeError,
            r"normal\(dtype\): expected float32 or float64",
        ),
        (
            lambda: random.bernoulli_mask(0, 0, 3, 1.5),
            ValueError,
            r"bernoulli_mask\(p\): must be in \[0, 1\]",
        ),
        (
            lambda: random.bernoulli_mask(0, 0, 3, float("nan")),
            ValueError,
            r"bernoulli_mask\(p\): must be in \[0, 1\]",
        ),
        (
            lambda: random.philox4x32((0, 0, 0), (0, 0)),
            ValueError,
            r"philox4x32\(counter\): expected a sequence of 4",
        ),
        (
            lambda: random.philox4x32((0, 0, 0, 0), 7),
            ValueError,
            r"philox4x32\(key\): expected a sequence of 2",
        ),
        (
            lambda: random.philox4x32((0, 0, 0, 2**32), (0, 0)),
            ValueError,
            r"philox4x32\(counter\): must be in \[0, 2\*\*32\), got 4294967296",
        ),
    ],
    ids=[
        "seed-neg",
        "seed-big",
        "seed-float",
        "seed-bool",
        "offset-neg",
        "offset-end",
        "shape-neg",
        "shape-str",
        "shape-huge",
        "dtype-int",
        "dtype-half",
        "dtype-name",
        "p-big",
        "p-nan",
        "counter-3",
        "key-int",
        "word-big",
    ],
)
def test_bad_arguments_are_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()
