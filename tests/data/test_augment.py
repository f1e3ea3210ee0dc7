"""rnnbp.data.augment: SpecAugment masks, speed perturbation, additive noise at a target SNR; all seeded."""
import numpy as np
import pytest

import rnnbp
from rnnbp.data.augment import SpecAugment, SpecAugmentMasks, add_noise, spec_augment, speed_perturb

SR = 8000


def features(t=60, f=39, seed=0, dtype=np.float32):
    return (np.random.default_rng(seed).standard_normal((t, f)) * np.arange(1, f + 1) + 5).astype(dtype)


def snr_of(clean, noisy):
    clean = clean.astype(np.float64)
    return 10 * np.log10(np.mean(clean ** 2) / np.mean((noisy.astype(np.float64) - clean) ** 2))


# --------------------------------------------------------------- SpecAugment
def test_masks_respect_counts_sizes_and_bounds():
    aug = SpecAugment(n_time_masks=3, time_mask_param=12, n_freq_masks=2, freq_mask_param=7, p=0.25)
    g = np.random.default_rng(0)
    widths_t, widths_f = [], []
    for t in (0, 1, 10, 40, 100):
        for _ in range(200):
            m = aug.masks(t, 39, generator=g)
            assert isinstance(m, SpecAugmentMasks) and m.time.shape == (3, 2) and m.freq.shape == (2, 2)
            assert m.time.dtype == np.int64 and m.freq.dtype == np.int64
            wt, wf = m.time[:, 1] - m.time[:, 0], m.freq[:, 1] - m.freq[:, 0]
            assert np.all(m.time[:, 0] >= 0) and np.all(m.time[:, 1] <= t) and np.all(wt >= 0)
            assert np.all(m.freq[:, 0] >= 0) and np.all(m.freq[:, 1] <= 39) and np.all(wf >= 0)
            assert wt.max() <= min(12, int(0.25 * t)) and wf.max() <= 7
            if t == 100:
                widths_t.extend(wt.tolist())
                widths_f.extend(wf.tolist())
    assert set(widths_t) == set(range(13)) and set(widths_f) == set(range(8))  # the whole range is drawn
    narrow = SpecAugment(n_freq_masks=4, freq_mask_param=30).masks(50, 5, generator=g)
    assert np.all(narrow.freq[:, 1] - narrow.freq[:, 0] <= 5)  # F wider than the features: clipped
    none = SpecAugment(n_time_masks=0, n_freq_masks=0).masks(50, 39, generator=g)
    assert none.time.shape == (0, 2) and none.freq.shape == (0, 2)


def test_masked_cells_take_each_feature_mean_or_zero_and_the_rest_is_unchanged():
    x = features()
    aug = SpecAugment(n_time_masks=2, time_mask_param=10, n_freq_masks=2, freq_mask_param=8)
    m = aug.masks(*x.shape, generator=np.random.default_rng(3))
    out = aug.apply(x, m)
    masked = np.zeros(x.shape, bool)
    for a, b in m.time:
        masked[a:b] = True
    for a, b in m.freq:
        masked[:, a:b] = True
    assert masked.any() and not masked.all()
    assert np.array_equal(out[~masked], x[~masked])
    column_mean = np.broadcast_to(x.mean(axis=0, dtype=np.float64).astype(np.float32), x.shape)
    assert np.array_equal(out[masked], column_mean[masked])
    zeros = SpecAugment(2, 10, 2, 8, zero_masking=True).apply(x, m)
    assert np.all(zeros[masked] == 0) and np.array_equal(zeros[~masked], x[~masked])
    assert out.dtype == np.float32 and not np.shares_memory(out, x)
    x64 = features(dtype=np.float64)
    assert aug.apply(x64, m).dtype == np.float64


def test_spec_augment_is_seeded_and_leaves_its_input_alone():
    x = features()
    copy = x.copy()
    a = spec_augment(x, generator=np.random.default_rng(5))
    assert np.array_equal(x, copy)
    assert np.array_equal(a, spec_augment(x, generator=np.random.default_rng(5)))
    assert not np.array_equal(a, spec_augment(x, generator=np.random.default_rng(6)))
    assert np.array_equal(a, SpecAugment()(x, generator=np.random.default_rng(5)))
    rnnbp.manual_seed(1)
    b = spec_augment(x)
    rnnbp.manual_seed(1)
    assert np.array_equal(b, spec_augment(x))  # the default generator is rnnbp's
    assert np.array_equal(spec_augment(x, p=0.0, n_freq_masks=0), x)  # p=0: no frame may be masked


def test_spec_augment_errors():
    with pytest.raises(ValueError, match=r"expected one utterance's features of shape \(T, F\), got shape \(60,\)"):
        spec_augment(np.zeros(60, np.float32))
    with pytest.raises(TypeError, match="expected float features, got dtype int64"):
        spec_augment(np.zeros((5, 3), np.int64))
    with pytest.raises(ValueError, match="SpecAugment: n_time_masks must be an integer >= 0, got -1"):
        SpecAugment(n_time_masks=-1)
    with pytest.raises(ValueError, match=r"SpecAugment: p must be in \[0, 1\], got 1.5"):
        SpecAugment(p=1.5)
    with pytest.raises(TypeError, match="generator must be a numpy.random.Generator"):
        spec_augment(features(), generator=3)


# ------------------------------------------------------------------ speed
@pytest.mark.parametrize("factor", [0.9, 1.0, 1.1, 0.95])
def test_speed_perturbation_scales_length_and_pitch_by_the_factor(factor):
    n = SR
    y = (0.3 * np.sin(2 * np.pi * 500 * np.arange(n) / SR)).astype(np.float32)
    out = speed_perturb(y, factor)
    assert out.dtype == np.float32 and abs(len(out) - n / factor) <= 1
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    peak_hz = np.argmax(spectrum) * SR / len(out)
    assert abs(peak_hz - 500 * factor) <= 2  # played faster: the pitch rises with it
    if factor == 1.0:
        assert np.array_equal(out, y) and out is not y


def test_speed_perturbation_errors():
    with pytest.raises(ValueError, match=r"speed_perturb: factor must be in \[0.5, 2\], got 3.0"):
        speed_perturb(np.ones(100, np.float32), 3.0)
    with pytest.raises(ValueError, match=r"speed_perturb: expected mono samples of shape \(n,\)"):
        speed_perturb(np.ones((2, 100), np.float32), 1.1)
    with pytest.raises(ValueError, match="NaN or Inf"):
        speed_perturb(np.array([0.0, np.nan]), 1.1)


# ------------------------------------------------------------------ noise
@pytest.mark.parametrize("snr", [-5.0, 0.0, 10.0, 20.0, 40.0])
def test_white_noise_has_the_target_snr(snr):
    g = np.random.default_rng(0)
    y = (0.2 * np.sin(2 * np.pi * 300 * np.arange(4000) / SR)).astype(np.float32)
    y[:1000] = 0  # silence counts in the signal's power
    out = add_noise(y, snr, generator=g)
    assert out.dtype == np.float32 and out.shape == y.shape
    assert abs(snr_of(y, out) - snr) < 0.5
    assert abs(snr_of(y, out) - snr) < 1e-3  # scaled by the drawn noise's own power: exact up to rounding


def test_given_noise_is_cropped_or_repeated_and_scaled():
    g = np.random.default_rng(1)
    y = g.standard_normal(3000).astype(np.float32)
    hum = np.sin(2 * np.pi * 50 * np.arange(700) / SR)  # shorter than y: repeated
    out = add_noise(y, 12.0, noise=hum, generator=g)
    assert abs(snr_of(y, out) - 12.0) < 0.5
    residual = out.astype(np.float64) - y
    assert np.allclose(residual[700:1400], residual[:700], atol=1e-5)  # the recording, cyclically
    long_noise = g.standard_normal(20000)
    assert abs(snr_of(y, add_noise(y, 3.0, noise=long_noise, generator=g)) - 3.0) < 0.5


def test_noise_is_seeded():
    y = np.random.default_rng(2).standard_normal(500).astype(np.float32)
    a = add_noise(y, 10, generator=np.random.default_rng(9))
    assert np.array_equal(a, add_noise(y, 10, generator=np.random.default_rng(9)))
    assert not np.array_equal(a, add_noise(y, 10, generator=np.random.default_rng(10)))
    rnnbp.manual_seed(4)
    b = add_noise(y, 10)
    rnnbp.manual_seed(4)
    assert np.array_equal(b, add_noise(y, 10))
    assert add_noise(y.astype(np.float64), 10, generator=np.random.default_rng(0)).dtype == np.float64


def test_noise_errors():
    with pytest.raises(ValueError, match="add_noise: the signal is silent"):
        add_noise(np.zeros(100, np.float32), 10)
    with pytest.raises(ValueError, match="add_noise: the noise is silent"):
        add_noise(np.ones(100, np.float32), 10, noise=np.zeros(50))
    with pytest.raises(ValueError, match="add_noise: snr_db must be a finite number, got inf"):
        add_noise(np.ones(100, np.float32), float("inf"))
    with pytest.raises(ValueError, match=r"add_noise: expected mono samples of shape \(n,\), n > 0, got shape \(0,\)"):
        add_noise(np.zeros(0, np.float32), 10)
