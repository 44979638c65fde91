"""Train's parameters are Settings' settable fields: every one a request names reaches the settings (none dropped),
and any other key is refused, naming it."""

from __future__ import annotations

import unittest
from dataclasses import asdict, fields

from ..runtime_py.params import Param
from ..runtime_py.stage import Refused
from .presets import PRESETS, SCHEMA, Settings, settings_from_params


def other_value(spec: Param, current: object) -> object:
    """A valid value for `spec` that differs from `current`."""
    if spec.choices:
        return next(choice for choice in spec.choices if choice != current)
    low = spec.type(spec.minimum if spec.minimum is not None else 0)
    return low if low != current else spec.type(low + 1)


class SettingsFromParamsTest(unittest.TestCase):
    def test_every_settable_setting_a_request_names_is_applied(self):
        preview = asdict(PRESETS["preview"])
        settable = [f.name for f in fields(Settings) if "param" in f.metadata]
        self.assertIn("iterations", settable)
        for name in settable:
            value = other_value(SCHEMA[name], preview[name])
            preset, settings = settings_from_params({name: value}, "preview")
            self.assertEqual(preset, "preview")
            self.assertEqual(asdict(settings), {**preview, name: value}, name)

    def test_preset_and_device_choose_the_settings_and_the_backend(self):
        preset, settings = settings_from_params({"preset": "standard", "device": "cpu"}, "preview")
        self.assertEqual((preset, settings), ("standard", PRESETS["standard"]))

    def test_a_key_that_is_not_a_settable_setting_is_refused_naming_it(self):
        for key, value in (("test_every", 4), ("iteration", 100), ("init_opacity", 0.5)):
            with self.assertRaises(Refused) as refused:
                settings_from_params({key: value}, "preview")
            self.assertIn(f"unknown parameter {key!r}", str(refused.exception))

    def test_a_value_out_of_bounds_is_refused_naming_the_setting(self):
        for key, value in (("sh_degree", 4), ("ssim_lambda", 1.5), ("strategy", "fast"), ("iterations", 0)):
            with self.assertRaises(Refused) as refused:
                settings_from_params({key: value}, "preview")
            self.assertIn(repr(key), str(refused.exception))


if __name__ == "__main__":
    unittest.main()
