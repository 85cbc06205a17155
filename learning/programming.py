"""Programming non-idealities: how a physical device realises a requested conductance change.

Every update the learning layer computes passes through a DeviceModel before it reaches a
conductance: bounds [g_min, g_max], a finite number of levels, relative write noise, asymmetric
potentiation/depression with soft bounds (the step shrinks as the device nears its bound), and
device-to-device variation at initialisation. Read noise perturbs measured voltages.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ProgrammingModel:
    name: str = "ideal"
    g_min: float = 0.0  # siemens; conductances are clipped to [g_min, g_max]
    g_max: float = np.inf
    levels: int = 0  # 0: continuous; else the number of programmable levels in [g_min, g_max]
    write_noise: float = 0.0  # relative std of each applied change
    potentiation: float = 1.0  # scale of increases
    depression: float = 1.0  # scale of decreases
    soft_bounds: bool = False  # steps scale with the distance to the bound they approach
    d2d_variation: float = 0.0  # relative std of a device's gain, fixed at initialisation
    read_noise: float = 0.0  # std (volts) added to every measured node voltage

    def __post_init__(self):
        if not (0 <= self.g_min < self.g_max):
            raise ValueError(f"device model {self.name!r}: need 0 <= g_min < g_max, got {self.g_min}, {self.g_max}")
        if self.levels and (self.levels < 2 or not np.isfinite(self.g_max)):
            raise ValueError(f"device model {self.name!r}: levels needs >= 2 and a finite g_max")
        for f in ("write_noise", "potentiation", "depression", "d2d_variation", "read_noise"):
            if getattr(self, f) < 0:
                raise ValueError(f"device model {self.name!r}: {f} must be >= 0")
        if self.soft_bounds and not np.isfinite(self.g_max):
            raise ValueError(f"device model {self.name!r}: soft_bounds needs a finite g_max")

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and np.isinf(v) else v) for k, v in asdict(self).items()}

    def device_gains(self, shape, rng) -> np.ndarray | None:
        if self.d2d_variation == 0:
            return None
        return np.clip(rng.normal(1.0, self.d2d_variation, shape), 0.1, None)

    @property
    def bounded_addition(self) -> bool:
        """The device adds a requested change exactly and clips to [g_min, g_max] (for devices without
        device-to-device gains): no asymmetry, soft bounds, write noise or levels."""
        return (self.potentiation == self.depression == 1.0 and not self.soft_bounds and not self.write_noise
                and not self.levels)

    def apply(self, g: np.ndarray, delta: np.ndarray, rng, gains=None) -> None:
        """Adds the requested change ``delta`` to ``g`` in place, as the device would."""
        if gains is None and self.bounded_addition:  # plain bounded addition, no temporaries
            g += delta
            np.clip(g, self.g_min, self.g_max, out=g)
            return
        d = np.where(delta > 0, self.potentiation * delta, self.depression * delta)
        if self.soft_bounds:
            span = self.g_max - self.g_min
            d = np.where(d > 0, d * (self.g_max - g) / span, d * (g - self.g_min) / span)
        if gains is not None:
            d = d * gains
        if self.write_noise:
            d = d * (1.0 + self.write_noise * rng.standard_normal(d.shape))
        g += d
        np.clip(g, self.g_min, self.g_max, out=g)
        if self.levels:
            step = (self.g_max - self.g_min) / (self.levels - 1)
            np.round((g - self.g_min) / step, out=g)
            g *= step
            g += self.g_min

    def read(self, v: np.ndarray, rng) -> np.ndarray:
        return v if not self.read_noise else v + rng.normal(0.0, self.read_noise, v.shape)


# Named programming models; g_max (siemens) sets the range of the bounded ones.
_PRESETS = {
    "ideal": lambda g_max: ProgrammingModel("ideal", g_min=0.0),
    "bounded": lambda g_max: ProgrammingModel("bounded", g_min=0.0, g_max=g_max),
    "quantized": lambda g_max: ProgrammingModel("quantized", g_min=0.0, g_max=g_max, levels=64),
    "noisy": lambda g_max: ProgrammingModel("noisy", g_min=0.0, g_max=g_max, write_noise=0.3),
    "memristor": lambda g_max: ProgrammingModel("memristor", g_min=0.01 * g_max, g_max=g_max, levels=128,
                                                write_noise=0.2, potentiation=1.0, depression=0.7, soft_bounds=True,
                                                d2d_variation=0.1),
}
PRESETS = tuple(_PRESETS)


def preset(name: str, g_max: float) -> ProgrammingModel:
    """The named programming model with conductances up to ``g_max``."""
    if name not in _PRESETS:
        raise ValueError(f"unknown device model {name!r}; use one of {', '.join(PRESETS)}")
    return _PRESETS[name](g_max)
