"""Measures the composer on its rendered sound with librosa, never on its own note list.

Renders through the engine (48 kHz, the compose program's level and cap): a steady piece
(fixed heart rate, pacer and energy), the pad alone for comparison, and the sleep program
with composed music in the pad's place. Then, on the audio only:

* tempo: librosa's tempo estimate (octave chosen nearest the target, as tempo evaluations
  allow), refined by fitting a half-beat grid to librosa's onsets; error against the target;
* onsets on that grid: share within 20 ms (librosa's peak-picked onsets; the share of
  backtracked onsets too);
* key: Pearson correlation of each 30 s of chroma (CQT) with the Krumhansl-Kessler profile
  of the intended key;
* roughness: Sethares' model (after Plomp-Levelt) over each 0.5 s frame's spectral peaks,
  amplitudes normalised, against the pad's;
* repetition: correlation of every two 30 s chroma sequences at least 30 s apart (and the
  same figure on a copy with one stretch spliced in again, to show the measure sees a
  repeat); the theme: chroma of each return against the first statement, against the
  other phrases' openings;
* the sleep program's spectral centroid minute by minute;
* short-term loudness (3 s, pyloudnorm) spread, true peak (4x oversampled) against the cap,
  clicks (second-difference detector of tests/test_sound_clicks.py).

Run: ``PYTHONPATH=. .venv/bin/python bench/composer.py`` (``--minutes 20`` for the
repetition figure over 20 minutes; ``--json out.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import librosa
import numpy as np
import pyloudnorm
from scipy.signal import resample_poly

from device.music.composer import form
from device.music.composer.timing import tempo_target
from device.music.composer.voice import composer_in
from device.sound.engine import Engine
from device.sound.targets import OFF_DB, SoundTargets
from device.therapy.program import load_program
from device.therapy.timeline import Timeline
from tests.test_sound_clicks import clicks  # the repo's one click detector

RATE = 48000
BLOCK = 16384
CAP_DBFS = -6.0
#: Krumhansl-Kessler major profile (C major).
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
STEADY = SoundTargets(
    composer_db=-6.0, composer_style="piano", composer_energy=0.8, heart_bpm=90.0,
    pacer_bpm=6.0, swell_db=0.0, tones_db=OFF_DB, pad_db=OFF_DB, noise_db=OFF_DB,
    pad_preset="warm", entrain_kind="none",
)


def render(targets_at, seconds: float, seed: int = 1) -> tuple[np.ndarray, list]:
    """Render ``seconds`` with the targets ``targets_at(t)``; the audio and the phrase
    schedule (start frame, form role) the composer announced."""
    e = Engine(block_frames=BLOCK, volume_db=0.0, cap_dbfs=CAP_DBFS, seed=seed)
    e.set_targets(targets_at(0.0), immediate=True)
    e.fade_in(0.5)
    voice = composer_in(e.voices)
    schedule: list = []
    if voice is not None:
        compose = voice.composer.compose

        def spy(*a, **k):  # where phrases start: used only to know where to look
            events = compose(*a, **k)
            schedule.append((voice.composer.phrase_start, form.role(voice.composer.index - 1)))
            return events

        voice.composer.compose = spy  # type: ignore[method-assign]
    n = math.ceil(seconds * RATE / BLOCK)
    out = np.empty((n * BLOCK, 2), np.float32)
    for i in range(n):
        if i % 3 == 0:
            e.set_targets(targets_at(i * BLOCK / RATE))
        out[i * BLOCK : (i + 1) * BLOCK] = e.render()
    return out, schedule


def grid_fit(onsets: np.ndarray, period: float) -> tuple[float, float, np.ndarray]:
    """Best period (within 4 % of ``period``) and phase of a grid through ``onsets``;
    the residuals (s)."""
    best = (np.inf, period, 0.0)
    for p in np.linspace(0.96 * period, 1.04 * period, 801):
        ph = np.angle(np.mean(np.exp(2j * np.pi * onsets / p))) / (2 * np.pi) * p
        r = (onsets - ph + p / 2) % p - p / 2
        cost = np.mean(np.minimum(np.abs(r), 0.05))
        if cost < best[0]:
            best = (cost, p, ph)
    _, p, ph = best
    for q in np.linspace(p * 0.9998, p * 1.0002, 401):  # finer: 20 min of drift matters
        ph_q = np.angle(np.mean(np.exp(2j * np.pi * onsets / q))) / (2 * np.pi) * q
        r = (onsets - ph_q + q / 2) % q - q / 2
        cost = np.mean(np.minimum(np.abs(r), 0.05))
        if cost < best[0]:
            best = (cost, q, ph_q)
    _, p, ph = best
    return p, ph, (onsets - ph + p / 2) % p - p / 2


def tempo_figures(x: np.ndarray, target: float) -> dict:
    sr, hop = 24000, 128  # 5.3 ms onset frames
    y = librosa.resample(x.mean(1), orig_sr=RATE, target_sr=sr)
    env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop)
    est = float(librosa.feature.tempo(onset_envelope=env, sr=sr, hop_length=hop)[0])
    octave = min((est / 2, est, est * 2), key=lambda b: abs(math.log(b / target)))
    # onset times: the peaks librosa picks on the onset envelope (its default): a note's
    # attack is where the envelope rises most steeply. Backtracking (moving each onset to
    # the envelope's minimum before it) is for cutting audio before an attack; on a slow
    # or soft attack that minimum lies tens of ms before the note (reported apart).
    onsets, backtracked = (
        librosa.onset.onset_detect(
            onset_envelope=env, sr=sr, hop_length=hop, units="time", backtrack=bt
        )
        for bt in (False, True)
    )
    onsets, backtracked = onsets[onsets > 5.0], backtracked[backtracked > 5.0]
    half = 30.0 / octave  # the composer's notes fall on half beats
    p, _, res = grid_fit(onsets, half)
    fitted = 30.0 / p
    res_bt = grid_fit(backtracked, half)[2]
    return {
        "tempo_target_bpm": round(target, 2),
        "librosa_tempo_bpm": round(est, 2),
        "fitted_tempo_bpm": round(fitted, 3),
        "tempo_error_pct": round(100 * (fitted / target - 1), 3),
        "onsets": int(onsets.size),
        "onsets_within_20ms_pct": round(100 * float(np.mean(np.abs(res) <= 0.020)), 2),
        "onset_residual_p99_ms": round(1000 * float(np.percentile(np.abs(res), 99)), 1),
        "onsets_backtracked_within_20ms_pct": round(
            100 * float(np.mean(np.abs(res_bt) <= 0.020)), 2
        ),
        # where to look when the share falls short: each onset off the grid (s) and its
        # distance from the nearest grid point (ms)
        "onsets_off_grid_s_ms": [
            [round(float(t), 3), round(1000 * float(r), 1)]
            for t, r in zip(onsets, res, strict=True)
            if abs(r) > 0.020
        ],
    }


def chroma(x: np.ndarray, fmin: float | None = None) -> tuple[np.ndarray, float]:
    """CQT chroma (12 x frames) from ``fmin`` Hz up (default C1) and frames per second."""
    y = librosa.resample(x.mean(1), orig_sr=RATE, target_sr=22050)
    hop = 2048
    octaves = 7 if fmin is None else 4
    c = librosa.feature.chroma_cqt(y=y, sr=22050, hop_length=hop, fmin=fmin, n_octaves=octaves)
    return c, 22050 / hop


def key_figures(c: np.ndarray, fps: float, tonic_pc: int) -> dict:
    prof = np.roll(KK_MAJOR, tonic_pc)
    w = int(30 * fps)
    cors = [
        np.corrcoef(c[:, i : i + w].mean(1), prof)[0, 1] for i in range(0, c.shape[1] - w, w)
    ]
    return {
        "key_corr_min": round(min(cors), 3),
        "key_corr_median": round(float(np.median(cors)), 3),
    }


def roughness(x: np.ndarray, frame_s: float = 0.5) -> float:
    """Mean Sethares roughness of the frames' 24 strongest peaks (amplitudes sum to 1)."""
    y = x.mean(1).astype(np.float64)
    n = int(frame_s * RATE)
    win = np.hanning(n)
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    vals = []
    for i in range(0, len(y) - n, n):
        mag = np.abs(np.fft.rfft(y[i : i + n] * win))
        if mag.max() < 1e-6:
            continue
        pk = np.flatnonzero((mag[1:-1] > mag[:-2]) & (mag[1:-1] >= mag[2:])) + 1
        pk = pk[(mag[pk] > mag.max() * 0.01) & (freqs[pk] > 20)]
        pk = pk[np.argsort(mag[pk])[-24:]]
        f, a = freqs[pk], mag[pk] / mag[pk].sum()
        fi, fj = np.meshgrid(f, f)
        ai, aj = np.meshgrid(a, a)
        s = 0.24 / (0.0207 * np.minimum(fi, fj) + 18.96)
        d = np.abs(fi - fj)
        r = ai * aj * (np.exp(-3.51 * s * d) - np.exp(-5.75 * s * d))
        vals.append(float(np.triu(r, 1).sum()))
    return float(np.mean(vals))


def repetition(c: np.ndarray, fps: float, spliced: bool = False) -> float:
    """Highest correlation of two 30 s chroma sequences starting >= 30 s apart."""
    step = int(5 * fps)
    w = 6 * step  # 30 s windows 5 s apart, on the splice's frames
    if spliced:  # a control: one stretch copied again later
        c = c.copy()
        c[:, 4 * w : 5 * w] = c[:, w : 2 * w]
    starts = list(range(0, c.shape[1] - w, step))
    z = np.array([(c[:, s : s + w] - c[:, s : s + w].mean()).ravel() for s in starts])
    z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-12
    sim = z @ z.T
    far = np.abs(np.subtract.outer(starts, starts)) >= w
    return round(float(sim[far].max()), 3)


def theme_figures(c: np.ndarray, fps: float, schedule: list, beats_s: float) -> dict:
    w = int(4 * beats_s * fps)
    opening = {int(f / RATE * fps): role.theme for f, role in schedule}
    themes = [k for k, t in opening.items() if t and k + w < c.shape[1]]
    others = [k for k, t in opening.items() if not t and k + w < c.shape[1]]

    def corr(a: int, b: int) -> float:
        u, v = c[:, a : a + w].ravel(), c[:, b : b + w].ravel()
        return float(np.corrcoef(u, v)[0, 1])

    ret = [corr(themes[0], k) for k in themes[1:]]
    oth = [corr(themes[0], k) for k in others]
    return {
        "theme_returns": len(ret),
        "theme_return_corr_mean": round(float(np.mean(ret)), 3) if ret else None,
        "theme_return_corr_min": round(float(np.min(ret)), 3) if ret else None,
        "other_openings_corr_p95": round(float(np.percentile(oth, 95)), 3) if oth else None,
    }


def level_figures(x: np.ndarray) -> dict:
    meter = pyloudnorm.Meter(RATE)
    def windows(seconds: int, hop: int) -> np.ndarray:
        n = seconds * RATE
        out = [meter.integrated_loudness(x[i : i + n]) for i in range(20 * RATE, len(x) - n, hop)]
        return np.array([v for v in out if np.isfinite(v)])

    st = windows(3, RATE)
    ten = windows(10, 5 * RATE)
    tp = 20 * np.log10(np.abs(resample_poly(x, 4, 1, axis=0)).max())
    return {
        "short_term_lufs_median": round(float(np.median(st)), 2),
        "short_term_spread_p5_p95_lu": round(
            float(np.percentile(st, 95) - np.percentile(st, 5)), 2
        ),
        "short_term_spread_max_lu": round(float(st.max() - st.min()), 2),
        "ten_s_spread_max_lu": round(float(np.max(ten) - np.min(ten)), 2),
        "true_peak_dbtp": round(float(tp), 2),
        "cap_dbfs": CAP_DBFS,
        "clicks": int(clicks(x, 5000.0).size),
    }


def sleep_centroids(minutes: float) -> list[float]:
    """Composer-only sleep program (piano in the pad's place): centroid (Hz) per minute."""
    tl = Timeline(load_program("sleep", []), {"composer_style": "piano"})

    def at(t: float) -> SoundTargets:
        return tl.at(t).targets.with_changes(tones_db=OFF_DB, noise_db=OFF_DB, heart_bpm=70.0)

    x, _ = render(at, minutes * 60.0)
    y = x.mean(1)
    out = []
    for m in range(int(minutes)):
        seg = y[m * 60 * RATE : (m + 1) * 60 * RATE]
        spec = np.abs(librosa.stft(seg[::2], n_fft=4096, hop_length=4096)) ** 2
        f = librosa.fft_frequencies(sr=RATE // 2, n_fft=4096)
        out.append(round(float((spec * f[:, None]).sum() / spec.sum()), 1))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="steady piece length")
    ap.add_argument("--sleep-minutes", type=float, default=38.0, help="sleep program span")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    t0 = time.process_time()
    x, schedule = render(lambda t: STEADY, args.minutes * 60.0)
    pad, _ = render(lambda t: STEADY.with_changes(composer_db=OFF_DB, pad_db=-6.0), 120.0)
    target = tempo_target(STEADY.heart_bpm, STEADY.composer_energy)
    c, fps = chroma(x)
    figs: dict = {"minutes": args.minutes, "render_cpu_s": round(time.process_time() - t0, 1)}
    figs.update(tempo_figures(x, target))
    figs.update(key_figures(c, fps, tonic_pc=0))
    figs["roughness_composer"] = round(roughness(x[10 * RATE :]), 4)
    figs["roughness_pad"] = round(roughness(pad[10 * RATE :]), 4)
    figs["repetition_max_corr"] = repetition(c, fps)
    figs["repetition_max_corr_spliced_control"] = repetition(c, fps, spliced=True)
    # the theme is a melody: its chroma from C4 up (above the bass and most of the chords)
    high, _ = chroma(x, fmin=float(librosa.note_to_hz("C4")))
    figs.update(theme_figures(high, fps, schedule, 60.0 / target))
    figs.update(level_figures(x))
    cents = sleep_centroids(args.sleep_minutes)
    figs["sleep_centroid_hz_per_minute"] = cents
    figs["sleep_centroid_first3_last3_hz"] = [round(float(np.mean(cents[:3])), 1),
                                             round(float(np.mean(cents[-3:])), 1)]
    text = json.dumps(figs, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
