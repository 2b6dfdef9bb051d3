"""Parameters of the ``composite_cathode`` twin (cross-sectional operando KPFM of a LiCoPO4 / LATP /
Pd composite cathode).

The model they parametrise is described in :mod:`ionscope.simulate.composite_cathode` (which
re-exports the class); the microstructure's own fields come from
:class:`~ionscope.simulate.cathode_microstructure.MicrostructureParams`. Each field is a
:func:`~ionscope.simulate.registry.parameter` or :func:`~ionscope.simulate.registry.flag` with its
range and unit, checked on construction.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ionscope.errors import ConfigError
from ionscope.simulate.cathode_microstructure import MicrostructureParams, check_microstructure_parameters
from ionscope.simulate.registry import flag, parameter

TWIN = "composite_cathode"

#: Frame states (values of the ``state`` variable), as in the licoo2 twin.
REST, CHARGE, DISCHARGE = 0, 1, 2
STATE_MEANINGS = "rest charge discharge"


@dataclasses.dataclass(frozen=True)
class CompositeCathodeParams(MicrostructureParams):
    """Parameters of the ``composite_cathode`` twin: those of
    :class:`~ionscope.simulate.cathode_microstructure.MicrostructureParams` (the sample) plus

    Attributes
    ----------
    ny, nx, pixel_nm : int, int, float
        Scan size (px) and pixel size (nm). Default 512 x 512 at 5 nm (a 2.56 um field), which samples
        the ~7 nm resolution of the instrument (Nyquist).
    margin_nm : float
        Sample simulated beyond every edge of the field (nm) so that drifted frames and the PSF
        tail see real microstructure; rounded to whole pixels. Must hold the largest drift
        (checked). Default 300.
    frame_time_s : float
        Acquisition time of one frame (s), forward + backward lines; each row takes
        ``frame_time_s / ny``. Default 60.
    frame_interval_s : float
        Time from one frame's start to the next (s), at least ``frame_time_s``. Default 60.
    ocv_frames, charge_frames, rest_frames, discharge_frames : int
        The protocol in frames: open circuit, galvanostatic first charge, rest, galvanostatic
        discharge (the current switches at frame starts). Default 1, 7, 2, 0 (10 frames).
    capacity_mAh : float
        Cell capacity (mAh); sets the current at ``c_rate_per_h``. Default 0.1.
    c_rate_per_h : float
        Charge/discharge rate (1/h). Default 0.5 (the reference study's ~0.5 C).
    r_internal_ohm : float
        Internal resistance (ohm): the IR step of the cell voltage. Default 2000.
    ocv_start_V, ocv_plateau_V, ocv_rise_soc, ocv_slope_V : float
        Open-circuit voltage of the illustrative LiCoPO4 cell [open]:
        ``U = start + (plateau - start) (1 - exp(-soc / rise_soc)) + slope * soc``.
        Default 3.0 V, 4.75 V, 0.01, 0.5 V.
    record_interval_s : float
        Cycler log interval (s). Default 1.
    particle_coupling : float
        Change of a connected particle's surface potential per volt of cell-voltage change
        [open]. Default 0.1 (a ~1.9 V charge step gives ~190 mV).
    response_min_s, response_max_s : float
        Range of the connected particles' response times (first-order lag, log-uniform, s).
        Default 10, 60.
    v_licopo4_V, v_particle_spread_V, v_latp_V, v_pd_V : float
        Static contact-potential contrast before charging (V; the collector is 0 V): mean and
        per-particle standard deviation of LiCoPO4, LATP, Pd. Default 0.12, 0.02, -0.05, 0.04.
    latp_rise_V, latp_rise_length_nm, latp_rise_time_s : float
        The electrolyte's first-charge rise: amplitude next to an active particle (V), decay
        length away from it (nm), and time constant at the charge current (s). Default 0.06,
        150, 120.
    psf_sigma_nm, psf_tail_fraction, psf_tail_sigma_nm : float
        KPFM point-spread function: Gaussian core (sigma, nm) plus a Gaussian long-range tail
        (weight, sigma in nm) from the cantilever. Default 7, 0.3, 80.
    noise_V : float
        White noise SD per pixel of each potential trace (V). Default 0.010.
    line_offset_V : float
        SD of the per-line potential offset (V), shared by the forward and backward trace.
        Default 0.005.
    tip_offset_V : float
        Contact-potential offset of the tip added to every measured value (V). Default 0.3.
    bias_on_tip : bool
        The KPFM bias is applied to the tip: the recorded channel is the negative of the sample
        potential. Default False (bias on the sample).
    drift_y_nm, drift_x_nm, drift_jitter_nm : float
        Linear sample drift per frame (nm) and random-walk step per frame (nm); frame 0 has no
        drift. Default 3, -5, 2 (a few px over the series, sub-pixel parts).
    first_scan_up : bool
        Frame 0 is an up-scan (bottom row first); directions alternate. Default True.
    height_licopo4_nm, height_pd_nm, height_collector_nm : float
        Heights after polishing relative to the LATP (nm). Default 3, 1.5, -5.
    tilt_y_nm_per_um, tilt_x_nm_per_um : float
        Sample tilt plane in the topography (nm per um along y and x). Default 4, -6.
    topography_noise_nm, topography_line_offset_nm : float
        White noise SD and per-line offset SD of the topography (nm). Default 0.2, 0.3.

    TOF-SIMS of the same sample (:mod:`ionscope.simulate.composite_cathode_sims`; the KPFM
    frames ignore these):

    sims_pixel_nm, sims_ny, sims_nx : float, int, int
        SIMS pixel size (nm) and field (px). Default 100 nm, 28 x 28 (2.8 um). With its rotation
        and the stage shifts it must fit inside the sample (KPFM field + 2 x ``margin_nm``);
        checked when the SIMS twin runs (:meth:`check_sims_field`), not here, so a small
        KPFM-only field stays valid.
    sims_rotation_deg : float
        Rotation of the SIMS raster against the KPFM scan axes (degrees): a SIMS pixel step
        ``(dy, dx)`` runs along :math:`R(\theta)(dy, dx)` in the sample, R acting on (y, x) as in
        :mod:`ionscope.register.multimodal` (positive: counter-clockwise as displayed, y down).
        Default 0.
    sims_offset_y_nm, sims_offset_x_nm : float
        Position of the SIMS field's centre relative to the KPFM field's centre (nm, sample
        axes). Default 0, 0: the two fields share their centre (pixel centres on pixel centres).
        :meth:`kpfm_to_sims_truth` gives the registration these imply.
    sims_subpixel_nm : float
        Target spacing of the supersampling points that give the area fractions of every pixel
        (nm); at least 4 x 4 points per pixel. Default 10.
    sims_states : int
        States of charge imaged: pristine, charge1, discharge1, charge2, ... Default 5.
    sims_state_interval_s : float
        Time between the states after the first charge (s). The pristine state is imaged at the
        KPFM protocol's start (before the charge), charge1 at its end (the cycler log's last
        record), each later state this much later (beyond the log). Default 3600.
    sims_scans, sims_shots_per_pixel : int
        Scans and primary-ion shots per pixel per scan; pulses per pixel n = their product (the
        dead-time correction's pulse count). Default 60, 32 (n = 1920): enough counts that the
        per-phase Li of a 28 x 28 px field is known to about 0.6 % per state.
    sims_stage_shift_nm : float
        Standard deviation (each axis) of the stage's repositioning error of every state after
        the first (nm), clipped to the sample left around the SIMS field. Default 80.
    sims_dose_jitter : float
        Relative standard deviation of the primary-ion dose of each state. Default 0.05.
    sims_charge_depth_min, sims_charge_depth_max : float
        Range of the fraction of its pristine Li an active LiCoPO4 particle gives up on each
        charge (uniform per particle) [open]. Default 0.35, 0.55.
    sims_li_recovery : float
        Fraction of that Li an active particle takes back on each discharge [open]. Default 0.9.
    sims_latp_li_loss : float
        Fraction of its Li the LATP loses on the first charge and keeps lost (the reference
        study's finding) [open]. Default 0.12.
    sims_yield_li7_licopo4, sims_yield_li7_latp : float
        Expected 7Li+ counts per pixel of pure, pristine LiCoPO4 / LATP at nominal dose (before
        dead time) [open]. Default 2496 (1.3 x n: 7Li saturates), 540.
    sims_yield_co_licopo4, sims_yield_p_licopo4 : float
        59Co+ and 31P+ counts per pure LiCoPO4 pixel [open]. Default 450, 180.
    sims_yield_p_latp, sims_yield_ti_latp, sims_yield_al_latp : float
        31P+, 48Ti+ and 27Al+ counts per pure LATP pixel [open]. Default 240, 360, 150.
    sims_yield_pd, sims_yield_au : float
        106Pd+ counts per pure Pd pixel, 197Au+ per pure collector (Au) pixel [open]. Default
        900, 750.
    sims_yield_na, sims_yield_k : float
        Background 23Na+ and 39K+ counts per pixel on every phase [open]. Default 12, 6.
    sims_noise_peaks : float
        Mean number of one-count noise peaks per pixel at uniformly random masses (1-250 u).
        Default 3.
    sims_resolution : float
        Mass resolution m / FWHM. Default 5000.
    sims_calibration_offset_sd, sims_calibration_gain_sd : float
        Standard deviations of each state's mass-calibration error: the file's masses satisfy
        ``sqrt(m_file) = (sqrt(m_true) - a) / b`` with ``a`` ~ N(0, offset_sd) (sqrt(u)) and
        ``b - 1`` ~ N(0, gain_sd). Default 0.004, 1e-4 (7Li off by a few 10 mu, 106Pd by ~0.1 u).
    """

    ny: int = parameter(512, 32, 4096, "px", integer=True)
    nx: int = parameter(512, 32, 4096, "px", integer=True)
    pixel_nm: float = parameter(5.0, 0.5, 1000.0, "nm")
    margin_nm: float = parameter(300.0, 0.0, 1e5, "nm")
    frame_time_s: float = parameter(60.0, 0.1, 1e5, "s")
    frame_interval_s: float = parameter(60.0, 0.1, 1e6, "s")
    ocv_frames: int = parameter(1, 0, 10000, "frames", integer=True)
    charge_frames: int = parameter(7, 0, 10000, "frames", integer=True)
    rest_frames: int = parameter(2, 0, 10000, "frames", integer=True)
    discharge_frames: int = parameter(0, 0, 10000, "frames", integer=True)
    capacity_mAh: float = parameter(0.1, 1e-9, 1e6, "mAh")
    c_rate_per_h: float = parameter(0.5, 0.0, 100.0, "1/h")
    r_internal_ohm: float = parameter(2000.0, 0.0, 1e9, "ohm")
    ocv_start_V: float = parameter(3.0, 0.0, 6.0, "V")
    ocv_plateau_V: float = parameter(4.75, 0.0, 6.0, "V")
    ocv_rise_soc: float = parameter(0.01, 1e-6, 1.0, "")
    ocv_slope_V: float = parameter(0.5, -10.0, 10.0, "V")
    record_interval_s: float = parameter(1.0, 1e-3, 1e4, "s")
    particle_coupling: float = parameter(0.1, -2.0, 2.0, "V/V")
    response_min_s: float = parameter(10.0, 1e-3, 1e6, "s")
    response_max_s: float = parameter(60.0, 1e-3, 1e6, "s")
    v_licopo4_V: float = parameter(0.12, -2.0, 2.0, "V")
    v_particle_spread_V: float = parameter(0.02, 0.0, 1.0, "V")
    v_latp_V: float = parameter(-0.05, -2.0, 2.0, "V")
    v_pd_V: float = parameter(0.04, -2.0, 2.0, "V")
    latp_rise_V: float = parameter(0.06, -2.0, 2.0, "V")
    latp_rise_length_nm: float = parameter(150.0, 1.0, 1e5, "nm")
    latp_rise_time_s: float = parameter(120.0, 1e-3, 1e7, "s")
    psf_sigma_nm: float = parameter(7.0, 0.1, 1000.0, "nm")
    psf_tail_fraction: float = parameter(0.3, 0.0, 0.9, "")
    psf_tail_sigma_nm: float = parameter(80.0, 0.1, 2000.0, "nm")
    noise_V: float = parameter(0.010, 0.0, 1.0, "V")
    line_offset_V: float = parameter(0.005, 0.0, 1.0, "V")
    tip_offset_V: float = parameter(0.3, -5.0, 5.0, "V")
    bias_on_tip: bool = flag(False)
    drift_y_nm: float = parameter(3.0, -1000.0, 1000.0, "nm/frame")
    drift_x_nm: float = parameter(-5.0, -1000.0, 1000.0, "nm/frame")
    drift_jitter_nm: float = parameter(2.0, 0.0, 1000.0, "nm")
    first_scan_up: bool = flag(True)
    height_licopo4_nm: float = parameter(3.0, -1000.0, 1000.0, "nm")
    height_pd_nm: float = parameter(1.5, -1000.0, 1000.0, "nm")
    height_collector_nm: float = parameter(-5.0, -1000.0, 1000.0, "nm")
    tilt_y_nm_per_um: float = parameter(4.0, -1e4, 1e4, "nm/um")
    tilt_x_nm_per_um: float = parameter(-6.0, -1e4, 1e4, "nm/um")
    topography_noise_nm: float = parameter(0.2, 0.0, 1000.0, "nm")
    topography_line_offset_nm: float = parameter(0.3, 0.0, 1000.0, "nm")
    sims_pixel_nm: float = parameter(100.0, 1.0, 1e4, "nm")
    sims_ny: int = parameter(28, 4, 4096, "px", integer=True)
    sims_nx: int = parameter(28, 4, 4096, "px", integer=True)
    sims_rotation_deg: float = parameter(0.0, -45.0, 45.0, "degrees")
    sims_offset_y_nm: float = parameter(0.0, -1e5, 1e5, "nm")
    sims_offset_x_nm: float = parameter(0.0, -1e5, 1e5, "nm")
    sims_subpixel_nm: float = parameter(10.0, 0.1, 1e4, "nm")
    sims_states: int = parameter(5, 1, 99, "states", integer=True)
    sims_state_interval_s: float = parameter(3600.0, 1.0, 1e7, "s")
    sims_scans: int = parameter(60, 1, 100000, "scans", integer=True)
    sims_shots_per_pixel: int = parameter(32, 1, 100000, "shots", integer=True)
    sims_stage_shift_nm: float = parameter(80.0, 0.0, 1e5, "nm")
    sims_dose_jitter: float = parameter(0.05, 0.0, 0.3, "")
    sims_charge_depth_min: float = parameter(0.35, 0.0, 1.0, "")
    sims_charge_depth_max: float = parameter(0.55, 0.0, 1.0, "")
    sims_li_recovery: float = parameter(0.9, 0.0, 1.0, "")
    sims_latp_li_loss: float = parameter(0.12, 0.0, 1.0, "")
    sims_yield_li7_licopo4: float = parameter(2496.0, 0.0, 1e7, "counts")
    sims_yield_li7_latp: float = parameter(540.0, 0.0, 1e7, "counts")
    sims_yield_co_licopo4: float = parameter(450.0, 0.0, 1e7, "counts")
    sims_yield_p_licopo4: float = parameter(180.0, 0.0, 1e7, "counts")
    sims_yield_p_latp: float = parameter(240.0, 0.0, 1e7, "counts")
    sims_yield_ti_latp: float = parameter(360.0, 0.0, 1e7, "counts")
    sims_yield_al_latp: float = parameter(150.0, 0.0, 1e7, "counts")
    sims_yield_pd: float = parameter(900.0, 0.0, 1e7, "counts")
    sims_yield_au: float = parameter(750.0, 0.0, 1e7, "counts")
    sims_yield_na: float = parameter(12.0, 0.0, 1e7, "counts")
    sims_yield_k: float = parameter(6.0, 0.0, 1e7, "counts")
    sims_noise_peaks: float = parameter(3.0, 0.0, 1000.0, "peaks")
    sims_resolution: float = parameter(5000.0, 10.0, 1e6, "")
    sims_calibration_offset_sd: float = parameter(0.004, 0.0, 0.5, "sqrt(u)")
    sims_calibration_gain_sd: float = parameter(1e-4, 0.0, 0.05, "")

    def __post_init__(self) -> None:
        check_microstructure_parameters(self, TWIN)
        if self.n_frames == 0:
            raise ConfigError(
                f"twin {TWIN!r} needs at least one frame: ocv_frames + charge_frames + rest_frames "
                "+ discharge_frames is 0"
            )
        if self.frame_interval_s < self.frame_time_s:
            raise ConfigError(
                f"twin {TWIN!r}: parameter 'frame_interval_s' ({self.frame_interval_s:g} s) must be "
                f"at least 'frame_time_s' ({self.frame_time_s:g} s)"
            )
        if self.response_min_s > self.response_max_s:
            raise ConfigError(
                f"twin {TWIN!r}: parameter 'response_min_s' ({self.response_min_s:g} s) must not "
                f"exceed 'response_max_s' ({self.response_max_s:g} s)"
            )
        field = self.ny * self.pixel_nm
        if self.collector_nm + 3 * self.collector_roughness_nm > 0.5 * field:
            raise ConfigError(
                f"twin {TWIN!r}: the collector band (collector_nm + 3 x collector_roughness_nm = "
                f"{self.collector_nm + 3 * self.collector_roughness_nm:g} nm) must fill at most half "
                f"the field height ny * pixel_nm = {field:g} nm"
            )
        bound = self.drift_bound_nm
        if bound > self.margin_px * self.pixel_nm:
            raise ConfigError(
                f"twin {TWIN!r}: the drift can reach {bound:g} nm over {self.n_frames} frames "
                f"((frames - 1) x the larger of |drift_y_nm|, |drift_x_nm| plus 4 x "
                f"drift_jitter_nm x sqrt(frames - 1)), more than margin_nm = "
                f"{self.margin_px * self.pixel_nm:g} nm; raise margin_nm or lower the drift"
            )
        self._check_sims()

    def _check_sims(self) -> None:
        """Cross-field constraints of the TOF-SIMS parameters that do not involve the KPFM field."""
        if self.sims_charge_depth_min > self.sims_charge_depth_max:
            raise ConfigError(
                f"twin {TWIN!r}: parameter 'sims_charge_depth_min' ({self.sims_charge_depth_min:g}) must "
                f"not exceed 'sims_charge_depth_max' ({self.sims_charge_depth_max:g})"
            )
        charges = self.sims_states // 2
        if charges:
            lowest = 1.0 - self.sims_charge_depth_max * (1.0 + (charges - 1) * (1.0 - self.sims_li_recovery))
            if lowest < 0.0:
                raise ConfigError(
                    f"twin {TWIN!r}: over {charges} charges an active LiCoPO4 particle would give up more "
                    f"Li than it has (content {lowest:.3g} after the last charge: sims_charge_depth_max x "
                    "(1 + (charges - 1) x (1 - sims_li_recovery)) must be at most 1); lower "
                    "sims_charge_depth_max or sims_states, or raise sims_li_recovery"
                )
        if self.sims_latp_li_loss >= 1.0:
            raise ConfigError(
                f"twin {TWIN!r}: parameter 'sims_latp_li_loss' ({self.sims_latp_li_loss:g}) must be below 1 "
                "(the LATP would keep no Li)"
            )
        n = self.sims_pulses
        name, largest = max(self.sims_yields().items(), key=lambda kv: kv[1])
        mu = largest * (1.0 + 3.0 * self.sims_dose_jitter)
        if mu > 0.0 and n * math.log1p(-math.exp(-mu / n)) > math.log(1e-6):
            raise ConfigError(
                f"twin {TWIN!r}: parameter {name!r} ({largest:g} counts per pixel, {mu:g} at the highest "
                f"dose) would make every one of the n = sims_scans x sims_shots_per_pixel = {n} pulses "
                "record an ion in some pixels (probability above 1e-6 per pixel), where the Poisson "
                "dead-time correction is undefined; lower the yield or raise sims_scans or "
                "sims_shots_per_pixel"
            )

    def sims_yields(self) -> dict[str, float]:
        """The ``sims_yield_*`` parameters by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name.startswith("sims_yield_")}

    @property
    def sims_pulses(self) -> int:
        """Primary-ion pulses per SIMS pixel: ``sims_scans x sims_shots_per_pixel``."""
        return self.sims_scans * self.sims_shots_per_pixel

    def sims_state_times_s(self) -> np.ndarray:
        """Acquisition time of every state (s from the KPFM protocol's start; see
        ``sims_state_interval_s``)."""
        end = self.n_frames * self.frame_interval_s
        k = np.arange(self.sims_states, dtype=np.float64)
        return np.where(k == 0, 0.0, end + np.maximum(k - 1, 0.0) * self.sims_state_interval_s)

    def sims_state_names(self) -> list[str]:
        """``pristine, charge1, discharge1, charge2, discharge2, ...`` (``sims_states`` names)."""
        return ["pristine"] + [f"{'charge' if s % 2 else 'discharge'}{(s + 1) // 2}"
                               for s in range(1, self.sims_states)]

    @property
    def sims_field_centre_nm(self) -> tuple[float, float]:
        """Sample coordinates (nm, y then x) of the first SIMS state's field centre: the KPFM
        field's centre (between its pixel centres) plus ``sims_offset_*_nm``."""
        m = self.margin_px * self.pixel_nm
        return (m + 0.5 * (self.ny - 1) * self.pixel_nm + self.sims_offset_y_nm,
                m + 0.5 * (self.nx - 1) * self.pixel_nm + self.sims_offset_x_nm)

    def sims_position_nm(self, row: np.ndarray | float, col: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Sample coordinates (nm) of the point at fractional SIMS pixel ``(row, col)`` of the
        first state (pixel centres at whole numbers): the field centre plus the rotated offset
        ``R(sims_rotation_deg) ((row - (ny - 1) / 2) P, (col - (nx - 1) / 2) P)``."""
        c, s = math.cos(math.radians(self.sims_rotation_deg)), math.sin(math.radians(self.sims_rotation_deg))
        cy, cx = self.sims_field_centre_nm
        u = (np.asarray(row, dtype=np.float64) - 0.5 * (self.sims_ny - 1)) * self.sims_pixel_nm
        v = (np.asarray(col, dtype=np.float64) - 0.5 * (self.sims_nx - 1)) * self.sims_pixel_nm
        return cy + c * u - s * v, cx + s * u + c * v

    @property
    def sims_field_origin_nm(self) -> tuple[float, float]:
        """Sample coordinates (nm, y then x) of the first SIMS state's pixel (0, 0) centre."""
        y, x = self.sims_position_nm(0.0, 0.0)
        return float(y), float(x)

    @property
    def sims_shift_bound_nm(self) -> float:
        """Largest stage shift (nm, along each SIMS axis; negative when the field does not fit):
        the sample left between the (rotated) SIMS field's outline and the nearest sample edge,
        divided by ``|cos| + |sin|`` of the rotation (the most a shift along the SIMS axes moves
        the field along a sample axis). The shifts are clipped to it."""
        m = self.margin_px * self.pixel_nm
        extent = (self.ny * self.pixel_nm + 2 * m, self.nx * self.pixel_nm + 2 * m)
        corners = self.sims_position_nm(np.array([-0.5, -0.5, self.sims_ny - 0.5, self.sims_ny - 0.5]),
                                        np.array([-0.5, self.sims_nx - 0.5, -0.5, self.sims_nx - 0.5]))
        sides = []
        for pos, size in zip(corners, extent):
            sides += [float(pos.min()), float(size - pos.max())]
        t = math.radians(self.sims_rotation_deg)
        return float(min(sides)) / (abs(math.cos(t)) + abs(math.sin(t)))

    def kpfm_to_sims_truth(self) -> dict[str, float]:
        """The rigid registration of the first KPFM frame onto the first SIMS state that this
        geometry implies, in :func:`ionscope.register.register_rigid`'s convention, for both grids'
        coordinates starting at 0 nm at their first pixel centre (as the twin's files give them):
        ``rotation_deg`` = -``sims_rotation_deg`` and the shift
        :math:`s = R(-\theta)(-o) + c_f - c_m` (o the SIMS centre's offset, c_f and c_m the two
        fields' centres in their own coordinates)."""
        t = math.radians(self.sims_rotation_deg)
        c, s = math.cos(t), math.sin(t)
        oy, ox = -self.sims_offset_y_nm, -self.sims_offset_x_nm
        cf = (0.5 * (self.sims_ny - 1) * self.sims_pixel_nm, 0.5 * (self.sims_nx - 1) * self.sims_pixel_nm)
        cm = (0.5 * (self.ny - 1) * self.pixel_nm, 0.5 * (self.nx - 1) * self.pixel_nm)
        return {"rotation_deg": -float(self.sims_rotation_deg),
                "shift_y_nm": c * oy + s * ox + cf[0] - cm[0],
                "shift_x_nm": -s * oy + c * ox + cf[1] - cm[1]}

    def sims_field_problem(self) -> str | None:
        """Why the SIMS field does not fit inside the sample with room for the stage shifts (at
        least 2 x ``sims_stage_shift_nm`` on every side), or None when it does."""
        need = 2.0 * self.sims_stage_shift_nm
        bound = self.sims_shift_bound_nm
        if bound >= need and bound >= 0.0:
            return None
        m = self.margin_px * self.pixel_nm
        return (
            f"twin {TWIN!r}: the SIMS field (sims_ny x sims_pixel_nm = {self.sims_ny * self.sims_pixel_nm:g} nm "
            f"by sims_nx x sims_pixel_nm = {self.sims_nx * self.sims_pixel_nm:g} nm, rotated by "
            f"{self.sims_rotation_deg:g} degrees, its centre {self.sims_offset_y_nm:g}, {self.sims_offset_x_nm:g} nm "
            f"from the KPFM field's) needs {need:g} nm (2 x sims_stage_shift_nm) of sample on every side for the stage "
            f"shifts between states, but the sample spans only {self.ny * self.pixel_nm + 2 * m:g} x "
            f"{self.nx * self.pixel_nm + 2 * m:g} nm (ny, nx x pixel_nm + 2 x margin_nm), leaving "
            f"{bound:g} nm; shrink the SIMS field (sims_ny, sims_nx, sims_pixel_nm), lower "
            "sims_stage_shift_nm or the offsets, or raise margin_nm (or the KPFM field ny, nx x pixel_nm)"
        )

    def check_sims_field(self) -> None:
        """Raise :class:`ConfigError` with :meth:`sims_field_problem`'s message when the SIMS
        field does not fit (a KPFM-only run does not need it to, so construction does not
        check it)."""
        problem = self.sims_field_problem()
        if problem is not None:
            raise ConfigError(problem)

    @property
    def n_frames(self) -> int:
        """Total number of frames."""
        return self.ocv_frames + self.charge_frames + self.rest_frames + self.discharge_frames

    @property
    def margin_px(self) -> int:
        """``margin_nm`` in whole pixels (rounded up)."""
        return int(math.ceil(self.margin_nm / self.pixel_nm - 1e-9))

    @property
    def drift_bound_nm(self) -> float:
        """Largest drift (nm) the margin must hold: ``(frames - 1) x max(|drift_y_nm|,
        |drift_x_nm|) + 4 x drift_jitter_nm x sqrt(frames - 1)`` (the random walk is clipped to
        it)."""
        n = self.n_frames - 1
        return n * max(abs(self.drift_y_nm), abs(self.drift_x_nm)) + 4.0 * self.drift_jitter_nm * math.sqrt(n)

    @property
    def line_time_s(self) -> float:
        """Time of one line, forward + backward (s)."""
        return self.frame_time_s / self.ny

    @property
    def current_A(self) -> float:
        """Galvanostatic current magnitude (A)."""
        return self.c_rate_per_h * self.capacity_mAh * 3.6 / 3600.0

    def frame_states(self) -> np.ndarray:
        """State code of every frame (int8: 0 rest (also open circuit), 1 charge, 2 discharge)."""
        counts = (self.ocv_frames, self.charge_frames, self.rest_frames, self.discharge_frames)
        return np.repeat(np.array([REST, CHARGE, REST, DISCHARGE], np.int8), counts)

    def microstructure_params(self) -> MicrostructureParams:
        """The sample's parameters alone."""
        names = [f.name for f in dataclasses.fields(MicrostructureParams)]
        return MicrostructureParams(**{n: getattr(self, n) for n in names})


__all__ = ["CompositeCathodeParams", "REST", "CHARGE", "DISCHARGE", "STATE_MEANINGS", "TWIN"]
