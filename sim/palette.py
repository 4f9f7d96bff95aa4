"""`Palette`: the real paints a robot has, and the colour science to choose among them.

Colours are sRGB-encoded (gamma, as in images and on screen) in 0..1 unless a name says Lab.
Lab is CIE L*a*b* under the D65 white point (L in 0..100, a and b roughly -128..127). Every
conversion and colour difference here is plain torch, works on any leading shape (..., 3) and is
differentiable (no NaN gradients at black, grey or identical colours), so a planner can put
them inside its objective.

A planner that optimises colours freely can either snap them to the palette at the end
(`Palette.snap`) or optimise a choice of paint per stroke: start from
`Palette.logits_from_colors`, mix with `Palette.soft_assign` and anneal the temperature towards
0 (or pass `hard=True` for a straight-through one-hot choice).
"""

from __future__ import annotations

import json

import numpy as np
import torch

from sim.dataclass_io import check_fields

# D65 reference white in XYZ (Y = 1) and the sRGB (linear) -> XYZ matrix of IEC 61966-2-1.
_D65 = (0.95047, 1.0, 1.08883)
_RGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
_LAB_EPS = 216.0 / 24389.0  # CIE: below this f(t) is linear instead of a cube root
_LAB_KAPPA = 24389.0 / 27.0


# ---- sRGB <-> Lab -------------------------------------------------------------------------------
def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded values (..., 3) in 0..1 -> linear light (..., 3)."""
    high = ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4
    return torch.where(rgb > 0.04045, high, rgb / 12.92)


def linear_to_srgb(lin: torch.Tensor) -> torch.Tensor:
    """Linear light (..., 3) -> sRGB-encoded values (..., 3), not clamped."""
    high = 1.055 * lin.clamp(min=0.0031308) ** (1.0 / 2.4) - 0.055
    return torch.where(lin > 0.0031308, high, lin * 12.92)


def srgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB (..., 3) in 0..1 -> CIE Lab D65 (..., 3); white -> (100, 0, 0)."""
    if rgb.shape[-1] != 3:
        raise ValueError(f"srgb_to_lab expects (..., 3), got {tuple(rgb.shape)}")
    m = torch.tensor(_RGB_TO_XYZ, dtype=rgb.dtype, device=rgb.device)
    white = torch.tensor(_D65, dtype=rgb.dtype, device=rgb.device)
    xyz = srgb_to_linear(rgb) @ m.T / white  # (..., 3), white-normalised
    cube = xyz.clamp(min=_LAB_EPS) ** (1.0 / 3.0)
    f = torch.where(xyz > _LAB_EPS, cube, (_LAB_KAPPA * xyz + 16.0) / 116.0)
    fx, fy, fz = f.unbind(-1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-1)


def lab_to_srgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE Lab D65 (..., 3) -> sRGB (..., 3); out-of-gamut colours come back outside 0..1."""
    if lab.shape[-1] != 3:
        raise ValueError(f"lab_to_srgb expects (..., 3), got {tuple(lab.shape)}")
    L, a, b = lab.unbind(-1)
    fy = (L + 16.0) / 116.0
    f = torch.stack([fy + a / 500.0, fy, fy - b / 200.0], dim=-1)
    eps_f = _LAB_EPS ** (1.0 / 3.0)
    xyz = torch.where(f > eps_f, f**3, (116.0 * f - 16.0) / _LAB_KAPPA)
    m = torch.tensor(_RGB_TO_XYZ, dtype=lab.dtype, device=lab.device)
    white = torch.tensor(_D65, dtype=lab.dtype, device=lab.device)
    lin = (xyz * white) @ torch.linalg.inv(m).T
    return linear_to_srgb(lin)


# ---- colour differences ------------------------------------------------------------------------
def _safe_sqrt(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """sqrt with a finite gradient at 0 (the gradient is 0 there)."""
    return torch.sqrt(x.clamp(min=eps)) * (x > eps)


def delta_e_cie76(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """CIE76 colour difference: Euclidean distance in Lab. (..., 3), (..., 3) -> (...)."""
    return _safe_sqrt(((lab1 - lab2) ** 2).sum(-1))


def _hue_deg(b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """atan2 in degrees, 0..360, 0 (with zero gradient) where a = b = 0."""
    zero = (a == 0) & (b == 0)
    h = torch.atan2(
        torch.where(zero, torch.zeros_like(b), b), torch.where(zero, torch.ones_like(a), a)
    )
    return torch.remainder(torch.rad2deg(h), 360.0)


def delta_e_ciede2000(
    lab1: torch.Tensor, lab2: torch.Tensor, kL: float = 1.0, kC: float = 1.0, kH: float = 1.0
) -> torch.Tensor:
    """CIEDE2000 colour difference (Sharma, Wu and Dalal, 2005). (..., 3), (..., 3) -> (...).

    About 1 is a just-noticeable difference; kL, kC, kH are the parametric weights (1 for
    reference conditions).
    """
    L1, a1, b1 = lab1.unbind(-1)
    L2, a2, b2 = lab2.unbind(-1)
    # 1. a' and C', h' (a rescaled so neutral colours get the right hue behaviour)
    c_bar = 0.5 * (_safe_sqrt(a1**2 + b1**2) + _safe_sqrt(a2**2 + b2**2))
    c7 = c_bar**7
    g = 0.5 * (1.0 - _safe_sqrt(c7 / (c7 + 25.0**7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = _safe_sqrt(a1p**2 + b1**2), _safe_sqrt(a2p**2 + b2**2)
    h1p, h2p = _hue_deg(b1, a1p), _hue_deg(b2, a2p)
    # 2. differences; the hue difference wraps to -180..180 and is 0 for a neutral colour
    chroma_zero = (c1p * c2p) == 0
    dL = L2 - L1
    dC = c2p - c1p
    dh = h2p - h1p
    dh = torch.where(dh > 180.0, dh - 360.0, torch.where(dh < -180.0, dh + 360.0, dh))
    dh = torch.where(chroma_zero, torch.zeros_like(dh), dh)
    dH = 2.0 * _safe_sqrt(c1p * c2p) * torch.sin(torch.deg2rad(dh) / 2.0)
    # 3. weighting functions at the pair's mean lightness, chroma and hue
    L_bar = 0.5 * (L1 + L2)
    cp_bar = 0.5 * (c1p + c2p)
    h_sum = h1p + h2p
    h_bar = torch.where(
        (h1p - h2p).abs() <= 180.0,
        0.5 * h_sum,
        torch.where(h_sum < 360.0, 0.5 * (h_sum + 360.0), 0.5 * (h_sum - 360.0)),
    )
    h_bar = torch.where(chroma_zero, h_sum, h_bar)
    rad = torch.deg2rad
    t = (
        1.0
        - 0.17 * torch.cos(rad(h_bar - 30.0))
        + 0.24 * torch.cos(rad(2.0 * h_bar))
        + 0.32 * torch.cos(rad(3.0 * h_bar + 6.0))
        - 0.20 * torch.cos(rad(4.0 * h_bar - 63.0))
    )
    d_theta = 30.0 * torch.exp(-(((h_bar - 275.0) / 25.0) ** 2))
    cp7 = cp_bar**7
    r_c = 2.0 * _safe_sqrt(cp7 / (cp7 + 25.0**7))
    l50 = (L_bar - 50.0) ** 2
    s_l = 1.0 + 0.015 * l50 / torch.sqrt(20.0 + l50)
    s_c = 1.0 + 0.045 * cp_bar
    s_h = 1.0 + 0.015 * cp_bar * t
    r_t = -torch.sin(rad(2.0 * d_theta)) * r_c
    tl, tc, th = dL / (kL * s_l), dC / (kC * s_c), dH / (kH * s_h)
    return _safe_sqrt(tl**2 + tc**2 + th**2 + r_t * tc * th)


DELTA_E = {"ciede2000": delta_e_ciede2000, "cie76": delta_e_cie76}


def delta_e(lab1: torch.Tensor, lab2: torch.Tensor, metric: str = "ciede2000") -> torch.Tensor:
    """Colour difference by name: 'ciede2000' (default) or 'cie76'. Lab (..., 3) -> (...)."""
    if metric not in DELTA_E:
        raise ValueError(f"unknown Delta-E metric {metric!r}; choose one of {sorted(DELTA_E)}")
    return DELTA_E[metric](lab1, lab2)


# ---- the palette --------------------------------------------------------------------------------
# Approximate sRGB of each paint dried on white paper; a colour calibration of the real paints
# (photographed swatches) should replace these for a particular robot.
PALETTE_PRESETS: dict[str, dict[str, tuple[float, float, float]]] = {
    # One black marker: what FRIDA's Sharpie set-up paints with.
    "sharpie": {"black": (0.08, 0.08, 0.09)},
    # A four-marker pack: the colours a pen plotter or marker holder usually carries.
    "markers": {
        "black": (0.08, 0.08, 0.09),
        "red": (0.84, 0.12, 0.15),
        "blue": (0.10, 0.25, 0.70),
        "green": (0.08, 0.55, 0.27),
    },
    # A student acrylic set: warm and cool primaries, an earth, black, and titanium white,
    # included because acrylic is opaque enough to lighten, tint and cover earlier marks.
    "acrylic": {
        "titanium white": (0.96, 0.96, 0.94),
        "cadmium yellow": (0.98, 0.78, 0.05),
        "cadmium red": (0.83, 0.13, 0.10),
        "alizarin crimson": (0.55, 0.08, 0.15),
        "ultramarine blue": (0.15, 0.16, 0.55),
        "phthalo green": (0.00, 0.35, 0.27),
        "burnt umber": (0.35, 0.22, 0.14),
        "mars black": (0.09, 0.09, 0.09),
    },
}

_JSON_FIELDS = ("colors", "names")


def _hex_name(rgb: torch.Tensor) -> str:
    r, g, b = (round(float(v) * 255) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


class Palette:
    """A set of P paints.

    Args:
        colors: (P, 3) float tensor (or nested list), sRGB in 0..1, P >= 1.
        names: P distinct non-empty names; default: hex codes like '#1f2e3d'.

    Attributes:
        colors: (P, 3) float32 CPU tensor, a private copy.
        names: list of P names.
    """

    def __init__(self, colors: torch.Tensor, names: list[str] | None = None) -> None:
        colors = torch.as_tensor(colors).detach()
        if colors.dim() != 2 or colors.shape[1] != 3:
            raise ValueError(f"Palette colors must have shape (P, 3), got {tuple(colors.shape)}")
        if colors.shape[0] == 0:
            raise ValueError("Palette needs at least one colour")
        if not colors.is_floating_point():
            raise ValueError(f"Palette colors must be floats in 0..1, got {colors.dtype}")
        if not bool(torch.isfinite(colors).all()):
            raise ValueError("Palette colors contain NaN or infinite values")
        if float(colors.min()) < 0.0 or float(colors.max()) > 1.0:
            raise ValueError(
                f"Palette colors must be in 0..1 (sRGB), got range "
                f"{float(colors.min()):.3g}..{float(colors.max()):.3g}"
            )
        self.colors = colors.to("cpu", torch.float32).clone()
        if names is None:
            names = [_hex_name(c) for c in self.colors]
        names = list(names)
        if len(names) != len(self.colors):
            raise ValueError(f"Palette has {len(self.colors)} colours but {len(names)} names")
        if not all(isinstance(n, str) and n for n in names):
            raise ValueError("Palette names must be non-empty strings")
        if len(set(names)) != len(names):
            raise ValueError(f"Palette names must be distinct, got {names}")
        self.names = names
        self.lab = srgb_to_lab(self.colors.double()).float()  # (P, 3)

    def __len__(self) -> int:
        return self.colors.shape[0]

    def __repr__(self) -> str:
        return f"Palette({self.names})"

    # ---- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"colors": self.colors.tolist(), "names": list(self.names)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict) -> Palette:
        check_fields("Palette", data, _JSON_FIELDS, required=("colors",))
        try:
            colors = torch.tensor(data["colors"], dtype=torch.float32)
        except (TypeError, ValueError) as e:
            raise ValueError(f"Palette.colors: not a numeric (P, 3) array ({e})") from None
        return cls(colors, data.get("names"))

    @classmethod
    def from_json(cls, text: str) -> Palette:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"Palette: invalid JSON ({e})") from None
        return cls.from_dict(data)

    @classmethod
    def preset(cls, name: str) -> Palette:
        """A named preset: 'sharpie' (black), 'markers' (black, red, blue, green) or 'acrylic'
        (8 paints incl. titanium white). See `PALETTE_PRESETS` for the colours."""
        if name not in PALETTE_PRESETS:
            raise ValueError(
                f"unknown palette preset {name!r}; choose one of {sorted(PALETTE_PRESETS)}"
            )
        paints = PALETTE_PRESETS[name]
        return cls(torch.tensor(list(paints.values())), list(paints))

    # ---- from an image ------------------------------------------------------------------------
    @classmethod
    def from_image(
        cls,
        image: torch.Tensor | np.ndarray,
        n: int,
        seed: int = 0,
        ignore_paper: bool = False,
        paper_delta_e: float = 10.0,
        max_pixels: int = 20000,
        iterations: int = 30,
    ) -> Palette:
        """The n dominant colours of an image, by k-means in Lab (k-means++ start, seeded).

        Args:
            image: (3, H, W) float tensor in 0..1, or (H, W, 3) uint8 numpy array (sRGB).
            n: number of colours, >= 1.
            seed: k-means++ and pixel subsampling seed; the same seed gives the same palette.
            ignore_paper: drop pixels within `paper_delta_e` (CIE76) of white paper first.
            paper_delta_e: how near white a pixel must be to count as paper (Delta-E units).
            max_pixels: pixels sampled (seeded) from larger images, for speed.
            iterations: at most this many Lloyd iterations (stops earlier when stable).
        Returns:
            A palette ordered by cluster size, largest first, named by hex code.
        """
        pixels = _image_pixels(image)  # (M, 3) float64 sRGB
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"Palette.from_image: n must be a positive integer, got {n!r}")
        g = torch.Generator().manual_seed(seed)
        if pixels.shape[0] > max_pixels:
            pixels = pixels[torch.randperm(pixels.shape[0], generator=g)[:max_pixels]]
        lab = srgb_to_lab(pixels)  # (M, 3)
        if ignore_paper:
            white = lab.new_tensor([100.0, 0.0, 0.0])
            lab = lab[delta_e_cie76(lab, white) > paper_delta_e]
        distinct = torch.unique(torch.round(lab * 100), dim=0).shape[0]
        if distinct < n:
            raise ValueError(
                f"Palette.from_image: the image has {distinct} distinct colours"
                f"{' besides paper' if ignore_paper else ''}, fewer than n={n}"
            )
        centers, labels = _kmeans(lab, n, g, iterations)
        order = torch.argsort(torch.bincount(labels, minlength=n), descending=True, stable=True)
        rgb = lab_to_srgb(centers[order]).clamp(0.0, 1.0)
        return cls(rgb.float())

    # ---- choosing paints ----------------------------------------------------------------------
    def delta_e_to(self, colors: torch.Tensor, metric: str = "ciede2000") -> torch.Tensor:
        """Colour difference from each colour (..., 3) sRGB to each paint: (..., P)."""
        lab = srgb_to_lab(colors)[..., None, :]  # (..., 1, 3)
        return delta_e(lab, self.lab.to(lab), metric)

    def snap(
        self, colors: torch.Tensor, metric: str = "ciede2000"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The perceptually nearest paint for each colour.

        Args:
            colors: (N, 3) (or (..., 3)) sRGB in 0..1.
            metric: 'ciede2000' (default) or 'cie76'.
        Returns:
            index: (N,) long, the paint index; snapped: (N, 3) the paints' colours
            (on the input's device and dtype; not differentiable).
        """
        _check_rgb(colors, "snap")
        index = self.delta_e_to(colors.detach(), metric).argmin(-1)
        return index, self.colors.to(colors)[index]

    def logits_from_colors(self, colors: torch.Tensor, scale: float = 10.0) -> torch.Tensor:
        """Initial paint-choice logits (N, P) = -CIEDE2000(colour, paint) / scale.

        Their argmax is `snap`'s choice; at temperature 1 a paint `scale` Delta-E units nearer
        gets e times the weight. Differentiable in `colors`.
        """
        _check_rgb(colors, "logits_from_colors")
        return -self.delta_e_to(colors) / scale

    def soft_assign(
        self, logits: torch.Tensor, temperature: float = 1.0, hard: bool = False
    ) -> torch.Tensor:
        """Mix paints by softmax(logits / temperature): (N, P) -> colours (N, 3) sRGB.

        Args:
            logits: (N, P) (or (..., P)) paint scores, differentiable.
            temperature: > 0; toward 0 the mix approaches the argmax paint.
            hard: straight-through choice: the forward value is exactly the argmax paint,
                the gradient is the softmax mixture's.
        """
        if logits.shape[-1] != len(self):
            raise ValueError(
                f"soft_assign: logits must end in P={len(self)} paints, got {tuple(logits.shape)}"
            )
        if not temperature > 0:
            raise ValueError(f"soft_assign: temperature must be > 0, got {temperature}")
        weights = torch.softmax(logits / temperature, dim=-1)  # (..., P)
        if hard:
            one_hot = torch.nn.functional.one_hot(weights.argmax(-1), len(self)).to(weights)
            weights = one_hot + (weights - weights.detach())  # exactly one-hot forward
        return weights @ self.colors.to(weights)


# ---- helpers ------------------------------------------------------------------------------------
def _check_rgb(colors: torch.Tensor, what: str) -> None:
    if not isinstance(colors, torch.Tensor) or colors.shape[-1:] != (3,):
        shape = tuple(colors.shape) if isinstance(colors, torch.Tensor) else type(colors).__name__
        raise ValueError(f"{what}: colors must be a (N, 3) tensor, got {shape}")
    if not colors.is_floating_point():
        raise ValueError(f"{what}: colors must be floats in 0..1, got {colors.dtype}")


def _image_pixels(image: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(3, H, W) float tensor or (H, W, 3) uint8 array -> (H*W, 3) float64 sRGB 0..1."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"Palette.from_image: a numpy image must be (H, W, 3) uint8, "
                f"got {image.shape} {image.dtype}"
            )
        return torch.from_numpy(image.reshape(-1, 3).astype(np.float64) / 255.0)
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3 or not image.is_floating_point():
            raise ValueError(
                f"Palette.from_image: a tensor image must be (3, H, W) float in 0..1, "
                f"got {tuple(image.shape)} {image.dtype}"
            )
        pixels = image.detach().to("cpu", torch.float64).reshape(3, -1).T  # (H*W, 3)
        if not bool(torch.isfinite(pixels).all()):
            raise ValueError("Palette.from_image: the image contains NaN or infinite values")
        return pixels.clamp(0.0, 1.0)
    raise ValueError(
        "Palette.from_image: image must be a (3, H, W) float tensor or an (H, W, 3) uint8 numpy "
        f"array, got {type(image).__name__}"
    )


def _kmeans(
    x: torch.Tensor, k: int, g: torch.Generator, iterations: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means with k-means++ seeding. x: (M, D) -> centres (k, D), labels (M,)."""
    # k-means++: each next centre is drawn with probability proportional to its squared
    # distance from the nearest centre so far.
    centers = [x[torch.randint(x.shape[0], (1,), generator=g)[0]]]
    d2 = ((x - centers[0]) ** 2).sum(-1)  # (M,)
    for _ in range(1, k):
        i = torch.multinomial(d2 / d2.sum(), 1, generator=g)[0]
        centers.append(x[i])
        d2 = torch.minimum(d2, ((x - x[i]) ** 2).sum(-1))
    c = torch.stack(centers)  # (k, D)
    labels = torch.cdist(x, c).argmin(1)
    for _ in range(iterations):
        sums = torch.zeros_like(c).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k)
        means = sums / counts.clamp(min=1)[:, None]
        if bool((counts == 0).any()):  # an emptied cluster restarts at the farthest point
            far = torch.cdist(x, c).min(1).values.argmax()
            means = torch.where(counts[:, None] > 0, means, x[far])
        c = means
        new = torch.cdist(x, c).argmin(1)
        if torch.equal(new, labels):
            break
        labels = new
    return c, labels
