"""Interactive map series for self-contained HTML reports.

:class:`InteractiveSeriesItem` is a report item (like :class:`~ionscope.report.html.FigureItem`)
that shows a series of maps - one or more *layers* of the same field of view, e.g. raw, fitted
and denoised Li-fraction maps, each ``(time, y, x)`` - in the browser:

- a frame slider (with a play button) that moves a marker along the cell-voltage curve of the
  cycler (click the curve to jump to the nearest frame);
- buttons that switch between the layers;
- a profile plot (the mean of every layer across ``x`` against ``y``, or across ``y`` against
  ``x``) that follows the slider;
- read-outs under the pointer: the map value with its unit, the position in nm, the frame's time
  and cell voltage.

Everything is inline: the maps are quantised to 8 bits per pixel (255 marks NaN; the read-outs
show the de-quantised value, within half a step of ``(max - min) / 254``) and embedded as
base64 in a JSON block, drawn by a small hand-written script on ``<canvas>`` elements. The
script is shared by every item of a page: :meth:`Report.render <ionscope.report.html.Report.render>`
includes each distinct ``script`` of the items once. Nothing is fetched; the page works offline.

Size limits: a frame is binned to at most ``max_pixels`` pixels (integer block means) and frames
are thinned evenly so that all layers together hold at most ``max_values`` values; the caption
says so when either happens.

Example
-------
>>> import numpy as np
>>> from ionscope.report.html import Report, Section
>>> maps = np.random.default_rng(0).random((3, 8, 10))
>>> item = InteractiveSeriesItem({"raw": maps, "smooth": maps * 0.5}, x_nm=np.arange(10) * 2.0,
...                              y_nm=np.arange(8) * 2.0, time_s=[0, 60, 120], voltage_V=[3.6, 3.8, 4.0],
...                              name="Li fraction", unit="1", caption="Li maps.")
>>> html = Report("r").add(Section("s", [item])).render()
>>> html.count('class="is-slider"'), html.count("function ionscopeSeries")
(1, 1)
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ionscope.report.html import _esc

__all__ = ["InteractiveSeriesItem", "series_item", "SERIES_SCRIPT", "SERIES_STYLE"]

#: Largest frame (pixels) embedded; bigger frames are binned by an integer factor.
MAX_PIXELS = 128 * 128
#: Largest number of map values (all layers and frames) embedded; more frames are thinned.
MAX_VALUES = 1_000_000
#: Largest number of points of a cycler log drawn (longer logs are thinned evenly).
MAX_CURVE_POINTS = 1500


def _b64(data: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(data).tobytes()).decode("ascii")


def _round(values: Any, digits: int = 6) -> list[float | None]:
    """Floats for JSON with ``digits`` significant digits; NaN -> None."""
    out: list[float | None] = []
    for v in np.asarray(values, dtype=np.float64).ravel():
        out.append(float(f"{v:.{digits}g}") if np.isfinite(v) else None)
    return out


def _bin(maps: np.ndarray, factor: int) -> np.ndarray:
    """Block nanmean of ``(..., ny, nx)`` by ``factor`` (edges that do not fill a block dropped)."""
    if factor <= 1:
        return maps
    ny, nx = (maps.shape[-2] // factor) * factor, (maps.shape[-1] // factor) * factor
    m = maps[..., :ny, :nx].reshape(*maps.shape[:-2], ny // factor, factor, nx // factor, factor)
    finite = np.isfinite(m)
    count = finite.sum(axis=(-3, -1))
    total = np.where(finite, m, 0.0).sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _bin_coord(coord: np.ndarray, factor: int) -> np.ndarray:
    if factor <= 1:
        return coord
    n = (coord.size // factor) * factor
    return coord[:n].reshape(-1, factor).mean(axis=1)


def _quantise(maps: np.ndarray) -> tuple[str, float, float]:
    """uint8 codes 0..254 over the layer's finite range (255: NaN), base64; and the range."""
    finite = np.isfinite(maps)
    if finite.any():
        lo, hi = float(maps[finite].min()), float(maps[finite].max())
    else:
        lo, hi = 0.0, 1.0
    span = hi - lo if hi > lo else 1.0
    codes = np.full(maps.shape, 255, dtype=np.uint8)
    codes[finite] = np.clip(np.rint((maps[finite] - lo) / span * 254.0), 0, 254).astype(np.uint8)
    return _b64(codes), lo, hi


def _state_texts(states: Sequence[Any] | None, n: int) -> list[str] | None:
    if states is None:
        return None
    texts = [str(s) for s in states]
    return texts if len(texts) == n else None


@dataclass
class InteractiveSeriesItem:
    """A series of maps with a frame slider, layer buttons, the cycler curve, a profile plot and
    hover read-outs (see the module docstring).

    Parameters
    ----------
    layers : mapping of str to array
        Label -> maps, each ``(time, y, x)`` or ``(y, x)`` (one frame), all of the same shape
        (e.g. ``{"raw": ..., "fitted": ..., "denoised": ...}``). The first layer is shown first.
    x_nm, y_nm : array
        Pixel-centre coordinates (nm) along ``x`` and ``y``; row 0 is drawn at the top.
    time_s : array, optional
        Time of every frame (s); shown in min when the series spans more than 10 min.
    voltage_V : array, optional
        Cell voltage at every frame (V): draws the cycler curve with the frame marker.
    cycler : (array, array), optional
        The cycler log ``(time_s, voltage_V)`` on the frames' clock, drawn as the curve (the
        frames' voltages are the markers on it); without it the frames' voltages make the curve.
    states : sequence of str, optional
        Cell state of every frame (``charge``, ``rest``...), shown with the frame.
    name : str
        What the maps show (e.g. ``"Li fraction x"``).
    unit : str
        Unit of the map values (``"1"`` for dimensionless).
    caption : str
        Caption under the item.
    vmin, vmax : float, optional
        Colour range shared by the layers; defaults to the 1-99 % percentiles of the first.
    cmap : str
        Matplotlib colormap name (embedded as a 256-colour table).
    profile : {"y", "x"}
        The profile plot shows each layer's mean across the other axis against this one.
    frame : int
        Frame shown first (negative: from the end, ``-1`` the newest).
    max_pixels, max_values : int
        Size limits (see the module docstring).
    """

    layers: Mapping[str, Any]
    x_nm: Any
    y_nm: Any
    time_s: Any = None
    voltage_V: Any = None
    cycler: tuple[Any, Any] | None = None
    states: Sequence[Any] | None = None
    name: str = "value"
    unit: str = "1"
    caption: str = ""
    vmin: float | None = None
    vmax: float | None = None
    cmap: str = "viridis"
    profile: str = "y"
    frame: int = 0
    max_pixels: int = MAX_PIXELS
    max_values: int = MAX_VALUES
    notes: list[str] = field(default_factory=list, init=False)

    #: The page-wide script and style (included once per page by Report.render).
    script = property(lambda self: SERIES_SCRIPT)
    style = property(lambda self: SERIES_STYLE)

    def payload(self) -> dict[str, Any]:
        """The JSON the script reads: coordinates, frames, the colour table and the layers."""
        from ionscope.report.figures import robust_range
        from ionscope.report.movie import colormap_lut

        if not self.layers:
            raise ValueError("InteractiveSeriesItem needs at least one layer")
        if self.profile not in ("y", "x"):
            raise ValueError(f"profile must be 'y' or 'x', not {self.profile!r}")
        arrays = {str(k): np.asarray(v, dtype=np.float64) for k, v in self.layers.items()}
        shapes = {a.shape for a in arrays.values()}
        if len(shapes) != 1:
            raise ValueError(f"the layers have different shapes: {sorted(shapes)}")
        arrays = {k: a[None] if a.ndim == 2 else a for k, a in arrays.items()}
        first = next(iter(arrays.values()))
        if first.ndim != 3:
            raise ValueError(f"layers must be (time, y, x) or (y, x), not {first.ndim}-D")
        n_t, ny, nx = first.shape
        x = np.asarray(self.x_nm, dtype=np.float64).ravel()
        y = np.asarray(self.y_nm, dtype=np.float64).ravel()
        if x.size != nx or y.size != ny:
            raise ValueError(f"x_nm ({x.size}) and y_nm ({y.size}) must match the maps' {nx} x {ny} px")
        t = np.arange(n_t, dtype=np.float64) if self.time_s is None else np.asarray(self.time_s, np.float64).ravel()
        volts = None if self.voltage_V is None else np.asarray(self.voltage_V, np.float64).ravel()
        if t.size != n_t or (volts is not None and volts.size != n_t):
            raise ValueError(f"time_s and voltage_V need one value per frame ({n_t})")
        if volts is not None and not np.isfinite(volts).any():
            volts = None  # no frame within the cycler log: no curve
        self.notes = []
        factor = max(1, math.ceil(math.sqrt(ny * nx / self.max_pixels)))
        if factor > 1:
            arrays = {k: _bin(a, factor) for k, a in arrays.items()}
            x, y = _bin_coord(x, factor), _bin_coord(y, factor)
            self.notes.append(f"maps binned {factor} × {factor}")
        per_frame = len(arrays) * x.size * y.size
        keep = np.arange(n_t)
        if n_t * per_frame > self.max_values:
            n_keep = max(2, self.max_values // per_frame)
            keep = np.unique(np.linspace(0, n_t - 1, n_keep).round().astype(int))
            arrays = {k: a[keep] for k, a in arrays.items()}
            self.notes.append(f"{keep.size} of {n_t} frames")
        states = _state_texts(self.states, n_t)
        vmin, vmax = self.vmin, self.vmax
        if vmin is None or vmax is None:
            lo, hi = robust_range(next(iter(arrays.values())))
            vmin = lo if vmin is None else vmin
            vmax = hi if vmax is None else vmax
        layers = []
        for label, a in arrays.items():
            data, lo, hi = _quantise(a)
            layers.append({"label": label, "lo": lo, "hi": hi, "data": data})
        span = float(t[keep].max() - t[keep].min()) if keep.size else 0.0
        curve = None
        if self.cycler is not None:
            ct, cv = (np.asarray(c, dtype=np.float64).ravel() for c in self.cycler)
            ok = np.isfinite(ct) & np.isfinite(cv)
            ct, cv = ct[ok], cv[ok]
            if ct.size > MAX_CURVE_POINTS:
                pick = np.unique(np.linspace(0, ct.size - 1, MAX_CURVE_POINTS).round().astype(int))
                ct, cv = ct[pick], cv[pick]
            curve = {"t": _round(ct), "v": _round(cv)}
        return {
            "name": self.name, "unit": self.unit, "nx": int(x.size), "ny": int(y.size),
            "x": _round(x), "y": _round(y), "t": _round(t[keep]),
            "tunit": "min" if span > 600 else "s",
            "v": None if volts is None else _round(volts[keep]),
            "states": None if states is None else [states[k] for k in keep],
            "frames": [int(k) for k in keep], "curve": curve,
            "vmin": float(vmin), "vmax": float(vmax) if vmax > vmin else float(vmin) + 1.0,
            "lut": _b64(colormap_lut(self.cmap)), "profile": self.profile,
            "frame": int(np.searchsorted(keep, min(max(int(self.frame) % n_t, 0), n_t - 1))),
            "layers": layers,
        }

    def to_html(self) -> str:
        """The item's HTML: controls, canvases, the JSON data and the caption."""
        data = self.payload()
        n = len(data["t"])
        text = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
        buttons = "".join(
            f'<label><input type="radio" value="{i}"{" checked" if i == 0 else ""}> {_esc(layer["label"])}</label>'
            for i, layer in enumerate(data["layers"]))
        slider = (f'<button type="button" class="is-play" title="play / pause">▶</button>'
                  f'<input type="range" class="is-slider" min="0" max="{n - 1}" step="1" value="{data["frame"]}" '
                  f'aria-label="frame">' if n > 1 else "")
        curve = '<canvas class="is-curve"></canvas>' if data["v"] is not None else ""
        notes = f" ({'; '.join(self.notes)} for the page.)" if self.notes else ""
        return (
            '<figure class="item iseries">'
            f'<div class="is-controls"><span class="is-layers">{buttons}</span>{slider}'
            '<span class="is-frame"></span></div>'
            f'<div class="is-panels"><canvas class="is-map"></canvas>{curve}<canvas class="is-profile"></canvas></div>'
            '<div class="is-readout">Point at a map or a curve for values.</div>'
            f'<script type="application/json" class="is-data">{text}</script>'
            f"<figcaption>{_esc(self.caption)}{_esc(notes)}</figcaption></figure>"
        )


def series_item(layers: Mapping[str, Any], caption: str, *, name: str | None = None, unit: str | None = None,
                cycler: tuple[Any, Any] | None = None, **options: Any) -> InteractiveSeriesItem:
    """An :class:`InteractiveSeriesItem` from labelled arrays.

    Parameters
    ----------
    layers : mapping of str to xarray.DataArray
        Label -> ``(time, y, x)`` or ``(y, x)`` DataArray with ``x``/``y`` coordinates in nm. The
        first one's ``time`` coordinate (s), its ``cell_voltage`` coordinate (V, e.g. from
        ``--cycler`` or ``ionscope timeline``) and its ``state`` coordinate are used when present.
    caption : str
        Caption under the item.
    name, unit : str, optional
        Quantity and unit; default: the first layer's ``long_name`` (or name) and ``units``.
    cycler : (array, array), optional
        The cycler log ``(time_s, voltage_V)`` to draw as the curve.
    **options
        Further :class:`InteractiveSeriesItem` parameters (``vmin``, ``vmax``, ``cmap``,
        ``profile``, ``states``...).

    Returns
    -------
    InteractiveSeriesItem
    """
    from ionscope.report.figures import state_names

    first = next(iter(layers.values()))
    arrays = {k: v.transpose(*[d for d in ("time", "y", "x") if d in v.dims]).values for k, v in layers.items()}

    def coord(dim):
        return first[dim].values if dim in first.coords else np.arange(first.sizes[dim], dtype=float)

    kwargs: dict[str, Any] = {"x_nm": coord("x"), "y_nm": coord("y")}
    if "time" in first.dims:
        kwargs["time_s"] = coord("time")
        if "cell_voltage" in first.coords and first["cell_voltage"].dims == ("time",):
            kwargs["voltage_V"] = first["cell_voltage"].values
        if "state" in first.coords and first["state"].dims == ("time",) and "states" not in options:
            codes = first["state"].values
            names = state_names(first["state"]) if np.issubdtype(codes.dtype, np.integer) else {}
            kwargs["states"] = [names.get(int(c), str(c)) if names else str(c) for c in codes]
    label = name or str(first.attrs.get("long_name") or first.name or "value")
    units = unit or str(first.attrs.get("units", "1"))
    return InteractiveSeriesItem(arrays, name=label, unit=units, caption=caption, cycler=cycler,
                                 **kwargs, **options)


SERIES_STYLE = """
figure.iseries{margin:14px 0 12px}
.is-controls{display:flex;flex-wrap:wrap;align-items:center;gap:8px 14px;font-size:13.5px;margin-bottom:6px}
.is-layers label{margin-right:10px;cursor:pointer;white-space:nowrap}
.is-slider{flex:1 1 220px;min-width:160px}
.is-play{font-size:13px;padding:1px 9px;cursor:pointer}
.is-frame{font-variant-numeric:tabular-nums;color:var(--fg);min-width:18ch}
.is-panels{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
.is-panels canvas{border:1px solid var(--line);border-radius:4px;background:#fff}
.is-readout{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:#334e68;
min-height:1.4em;margin-top:4px}
"""

# One script for every series item of a page (Report.render includes it once, at the end of the
# body): it finds the items, decodes their data and draws them; no network, no libraries.
SERIES_SCRIPT = r"""
function ionscopeSeries(root){
  "use strict";
  var D=JSON.parse(root.querySelector(".is-data").textContent);
  var dpr=window.devicePixelRatio||1, nx=D.nx, ny=D.ny, np=nx*ny, nt=D.t.length;
  function bytes(s){var b=atob(s),a=new Uint8Array(b.length);for(var i=0;i<b.length;i++)a[i]=b.charCodeAt(i);return a;}
  var lut=bytes(D.lut), layers=D.layers.map(function(L){return {label:L.label,lo:L.lo,hi:L.hi,q:bytes(L.data)};});
  var tdiv=D.tunit==="min"?60:1;
  function val(L,k,i){var c=L.q[k*np+i];return c===255?NaN:L.lo+(L.hi-L.lo)*c/254;}
  function fmt(v){if(v===null||!isFinite(v))return "–";var a=Math.abs(v);
    return (a!==0&&(a<1e-3||a>=1e5))?v.toExponential(2):String(+v.toPrecision(3));}
  var unit=D.unit==="1"?"":" "+D.unit;
  // profiles of every layer and frame (mean across the other axis, NaN skipped)
  var along=D.profile==="x"?D.x:D.y, prof=[], plo=Infinity, phi=-Infinity;
  layers.forEach(function(L){var P=[];for(var k=0;k<nt;k++){var p=[];
    for(var a=0;a<along.length;a++){var s=0,n=0;var m=D.profile==="x"?ny:nx;
      for(var b=0;b<m;b++){var v=D.profile==="x"?val(L,k,b*nx+a):val(L,k,a*nx+b);if(isFinite(v)){s+=v;n++;}}
      var mean=n?s/n:NaN;p.push(mean);if(isFinite(mean)){plo=Math.min(plo,mean);phi=Math.max(phi,mean);}}
    P.push(p);}prof.push(P);});
  if(!(phi>plo)){plo=D.vmin;phi=D.vmax;}
  var state={frame:D.frame,layer:0};
  var slider=root.querySelector(".is-slider"), label=root.querySelector(".is-frame"),
      out=root.querySelector(".is-readout"), play=root.querySelector(".is-play");
  var cmap=root.querySelector(".is-map"), ccur=root.querySelector(".is-curve"), cpro=root.querySelector(".is-profile");
  function setup(c,w,h){c.style.width=w+"px";c.style.height=h+"px";c.width=Math.round(w*dpr);c.height=Math.round(h*dpr);
    var g=c.getContext("2d");g.setTransform(dpr,0,0,dpr,0,0);return g;}
  function ticks(lo,hi,n){var r=hi-lo;if(!(r>0))return [lo];var s=Math.pow(10,Math.floor(Math.log10(r/n)));
    [1,2,5,10].some(function(m){if(r/(s*m)<=n){s*=m;return true;}return false;});
    var t=[];for(var v=Math.ceil(lo/s)*s;v<=hi+s*1e-9;v+=s)t.push(Math.abs(v)<s*1e-9?0:v);return t;}
  // axes in box {l,t,w,h} over ranges xr, yr; yflip: the first y at the top; returns the mappings
  function axes(g,box,xr,yr,xl,yl,yflip){
    var X=function(v){return box.l+(v-xr[0])/(xr[1]-xr[0])*box.w;};
    var Y=yflip?function(v){return box.t+(v-yr[0])/(yr[1]-yr[0])*box.h;}:function(v){return box.t+box.h-(v-yr[0])/(yr[1]-yr[0])*box.h;};
    g.strokeStyle="#52606d";g.fillStyle="#334e68";g.lineWidth=1;g.font="11px system-ui,sans-serif";
    g.strokeRect(box.l+.5,box.t+.5,box.w,box.h);g.textAlign="center";g.textBaseline="top";
    ticks(xr[0],xr[1],5).forEach(function(v){var p=X(v);g.beginPath();g.moveTo(p,box.t+box.h);g.lineTo(p,box.t+box.h+4);g.stroke();g.fillText(fmt(v),p,box.t+box.h+6);});
    g.fillText(xl,box.l+box.w/2,box.t+box.h+20);g.textAlign="right";g.textBaseline="middle";
    ticks(Math.min(yr[0],yr[1]),Math.max(yr[0],yr[1]),5).forEach(function(v){var p=Y(v);g.beginPath();g.moveTo(box.l,p);g.lineTo(box.l-4,p);g.stroke();g.fillText(fmt(v),box.l-6,p);});
    g.save();g.translate(12,box.t+box.h/2);g.rotate(-Math.PI/2);g.textAlign="center";g.fillText(yl,0,0);g.restore();
    return {X:X,Y:Y,box:box};}
  function half(c){return c.length>1?(c[c.length-1]-c[0])/(c.length-1)/2:0.5;}
  var xr=[D.x[0]-half(D.x),D.x[nx-1]+half(D.x)], yr=[D.y[0]-half(D.y),D.y[ny-1]+half(D.y)];
  var wph=Math.abs(xr[1]-xr[0]), hph=Math.abs(yr[1]-yr[0]), sc=Math.min(260/wph,260/hph);
  var mw=Math.max(60,Math.round(wph*sc)), mh=Math.max(60,Math.round(hph*sc));
  var mbox={l:54,t:10,w:mw,h:mh}, gmap=setup(cmap,mw+54+86,mh+10+36), mA;
  var off=document.createElement("canvas");off.width=nx;off.height=ny;var og=off.getContext("2d"),img=og.createImageData(nx,ny);
  var pw=290, ph=mh+46, pbox={l:58,t:10,w:pw-70,h:mh}, cA, pA;
  function drawMap(){var L=layers[state.layer],k=state.frame,span=D.vmax-D.vmin;
    for(var i=0;i<np;i++){var v=val(L,k,i),o=4*i;if(isFinite(v)){var c=Math.max(0,Math.min(255,Math.round((v-D.vmin)/span*255)));
      img.data[o]=lut[3*c];img.data[o+1]=lut[3*c+1];img.data[o+2]=lut[3*c+2];img.data[o+3]=255;}
      else{img.data[o]=img.data[o+1]=img.data[o+2]=235;img.data[o+3]=255;}}
    og.putImageData(img,0,0);gmap.clearRect(0,0,cmap.width,cmap.height);
    gmap.imageSmoothingEnabled=false;gmap.drawImage(off,mbox.l,mbox.t,mbox.w,mbox.h);
    mA=axes(gmap,mbox,xr,yr,"x (nm)","y (nm)",true);
    var bx=mbox.l+mbox.w+14,bw=12;for(var j=0;j<mbox.h;j++){var c=Math.round(255*(1-j/(mbox.h-1)));
      gmap.fillStyle="rgb("+lut[3*c]+","+lut[3*c+1]+","+lut[3*c+2]+")";gmap.fillRect(bx,mbox.t+j,bw,1);}
    gmap.strokeStyle="#52606d";gmap.strokeRect(bx+.5,mbox.t+.5,bw,mbox.h);gmap.fillStyle="#334e68";gmap.textAlign="left";
    gmap.textBaseline="top";gmap.fillText(fmt(D.vmax),bx+bw+4,mbox.t);gmap.textBaseline="bottom";
    gmap.fillText(fmt(D.vmin),bx+bw+4,mbox.t+mbox.h);gmap.textBaseline="middle";gmap.fillText(D.unit==="1"?"(1)":D.unit,bx+bw+4,mbox.t+mbox.h/2);
    cmap.dataset.frame=k;cmap.dataset.layer=state.layer;}
  var LINE=["#243b53","#e66100","#0072b2","#009e73","#cc79a7","#8a8f98"];
  function drawProfile(){var g=setup(cpro,pw,ph),pos=along,pr=[pos[0],pos[pos.length-1]];if(pr[1]===pr[0])pr[1]=pr[0]+1;
    var pad=(phi-plo)*0.05;pA=axes(g,pbox,pr,[plo-pad,phi+pad],(D.profile==="x"?"x":"y")+" (nm)",D.name+(D.unit==="1"?"":" ("+D.unit+")"),false);
    g.save();g.beginPath();g.rect(pbox.l,pbox.t,pbox.w,pbox.h);g.clip();
    layers.forEach(function(L,li){var p=prof[li][state.frame];g.strokeStyle=LINE[li%LINE.length];g.lineWidth=li===state.layer?2.4:1.1;
      g.globalAlpha=li===state.layer?1:0.6;g.beginPath();var up=false;
      for(var a=0;a<p.length;a++){if(!isFinite(p[a])){up=false;continue;}var X=pA.X(pos[a]),Y=pA.Y(p[a]);if(up)g.lineTo(X,Y);else g.moveTo(X,Y);up=true;}g.stroke();});
    g.restore();g.globalAlpha=1;g.textAlign="left";g.textBaseline="top";
    var lw=Math.max.apply(null,layers.map(function(L){return g.measureText(L.label).width;}));
    g.fillStyle="rgba(255,255,255,.85)";g.fillRect(pbox.l+3,pbox.t+2,lw+6,13*layers.length+3);
    layers.forEach(function(L,li){g.fillStyle=LINE[li%LINE.length];g.fillText(L.label,pbox.l+6,pbox.t+4+13*li);});
    cpro.dataset.frame=state.frame;}
  var ct=D.curve?D.curve.t:D.t, cv=D.curve?D.curve.v:D.v;
  function drawCurve(){if(!ccur)return;var g=setup(ccur,pw,ph),tr=[Infinity,-Infinity],vr=[Infinity,-Infinity];
    ct.forEach(function(t,i){if(cv[i]===null)return;tr[0]=Math.min(tr[0],t/tdiv);tr[1]=Math.max(tr[1],t/tdiv);vr[0]=Math.min(vr[0],cv[i]);vr[1]=Math.max(vr[1],cv[i]);});
    D.t.forEach(function(t,i){if(D.v[i]===null)return;tr[0]=Math.min(tr[0],t/tdiv);tr[1]=Math.max(tr[1],t/tdiv);vr[0]=Math.min(vr[0],D.v[i]);vr[1]=Math.max(vr[1],D.v[i]);});
    if(!(tr[1]>tr[0]))tr=[tr[0]-1,tr[0]+1];if(!(vr[1]>vr[0]))vr=[vr[0]-0.05,vr[0]+0.05];var pad=(vr[1]-vr[0])*0.06;
    cA=axes(g,pbox,tr,[vr[0]-pad,vr[1]+pad],"time ("+D.tunit+")","cell voltage (V)",false);
    g.strokeStyle="#2c6e8f";g.lineWidth=1.4;g.beginPath();var up=false;
    ct.forEach(function(t,i){if(cv[i]===null){up=false;return;}var X=cA.X(t/tdiv),Y=cA.Y(cv[i]);if(up)g.lineTo(X,Y);else g.moveTo(X,Y);up=true;});g.stroke();
    g.fillStyle="#9fb3c8";D.t.forEach(function(t,i){if(D.v[i]===null)return;g.beginPath();g.arc(cA.X(t/tdiv),cA.Y(D.v[i]),1.8,0,7);g.fill();});
    var k=state.frame,mx=cA.X(D.t[k]/tdiv);g.strokeStyle="rgba(214,39,40,.5)";g.lineWidth=1;g.beginPath();g.moveTo(mx,pbox.t);g.lineTo(mx,pbox.t+pbox.h);g.stroke();
    if(D.v[k]!==null){var my=cA.Y(D.v[k]);g.fillStyle="#d62728";g.beginPath();g.arc(mx,my,5,0,7);g.fill();
      ccur.dataset.markerX=Math.round(mx*dpr);ccur.dataset.markerY=Math.round(my*dpr);}
    ccur.dataset.frame=k;}
  function tstr(k){return fmt(D.t[k]/tdiv)+" "+D.tunit;}
  function frameText(k){return "frame "+(D.frames[k]+1)+" · "+tstr(k)+(D.v&&D.v[k]!==null?" · "+fmt(D.v[k])+" V":"")+(D.states?" · "+D.states[k]:"");}
  function show(k){state.frame=Math.max(0,Math.min(nt-1,k|0));if(slider)slider.value=state.frame;
    label.textContent=frameText(state.frame);root.dataset.frame=state.frame;root.dataset.layer=state.layer;drawMap();drawProfile();drawCurve();}
  if(slider)slider.addEventListener("input",function(){show(+slider.value);});
  var radios=root.querySelectorAll(".is-layers input"), group="is-"+Math.random().toString(36).slice(2);
  radios.forEach(function(r){r.name=group;r.addEventListener("change",function(){state.layer=+r.value;show(state.frame);});});
  var timer=null;if(play)play.addEventListener("click",function(){if(timer){clearInterval(timer);timer=null;play.textContent="▶";return;}
    play.textContent="❚❚";timer=setInterval(function(){show((state.frame+1)%nt);},125);});
  function pos(c,e){var r=c.getBoundingClientRect();return [e.clientX-r.left,e.clientY-r.top];}
  cmap.addEventListener("mousemove",function(e){var p=pos(cmap,e),b=mbox;
    if(p[0]<b.l||p[0]>=b.l+b.w||p[1]<b.t||p[1]>=b.t+b.h){return;}
    var j=Math.min(nx-1,Math.floor((p[0]-b.l)/b.w*nx)),i=Math.min(ny-1,Math.floor((p[1]-b.t)/b.h*ny)),L=layers[state.layer];
    out.textContent=L.label+": "+D.name+" = "+fmt(val(L,state.frame,i*nx+j))+unit+" at x = "+fmt(D.x[j])+" nm, y = "+fmt(D.y[i])+" nm · "+frameText(state.frame);});
  cpro.addEventListener("mousemove",function(e){var p=pos(cpro,e),a=0,best=Infinity,x=(p[0]-pbox.l)/pbox.w*(along[along.length-1]-along[0])+along[0];
    along.forEach(function(v,i){if(Math.abs(v-x)<best){best=Math.abs(v-x);a=i;}});
    out.textContent=(D.profile==="x"?"x":"y")+" = "+fmt(along[a])+" nm: "+layers.map(function(L,li){return L.label+" "+fmt(prof[li][state.frame][a])+unit;}).join(", ")+" · "+tstr(state.frame);});
  function nearest(e){var x=pos(ccur,e)[0],best=Infinity,k=0;
    D.t.forEach(function(t,i){var d=Math.abs(cA.X(t/tdiv)-x);if(d<best){best=d;k=i;}});return k;}
  if(ccur){ccur.addEventListener("mousemove",function(e){var k=nearest(e);out.textContent="t = "+tstr(k)+", cell voltage = "+fmt(D.v[k])+" V (frame "+(D.frames[k]+1)+(D.states?", "+D.states[k]:"")+"); click to show it";});
    ccur.addEventListener("click",function(e){show(nearest(e));});}
  show(state.frame);
}
document.querySelectorAll("figure.iseries").forEach(function(el){ionscopeSeries(el);});
"""
