"""The held-out set is fixed by the input's frame numbers: which other frames register does not move it, and a
held-out view beyond the training views' span in capture order is marked as an extrapolation."""

from __future__ import annotations

import unittest

from .heldout import extrapolated, is_held_out


def names(numbers):
    return [f"frame_{n:05d}.jpg" for n in numbers]


class HeldOutTest(unittest.TestCase):
    def held_out(self, registered):
        return [name for rank, name in enumerate(registered) if is_held_out(name, rank, 8)]

    def test_the_same_frames_are_held_out_whichever_others_register(self):
        everything = names(range(44))
        some = names([n for n in range(44) if n % 3 != 1])  # a third failed to register
        self.assertEqual(self.held_out(everything), names([4, 12, 20, 28, 36]))
        self.assertEqual(self.held_out(some), [n for n in names([4, 12, 20, 28, 36]) if n in some])

    def test_the_first_frame_is_never_held_out_and_names_without_numbers_go_by_rank(self):
        self.assertFalse(is_held_out("frame_00000.jpg", 0, 8))
        self.assertEqual(self.held_out(["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"]), ["e.jpg"])
        self.assertEqual(self.held_out(names(range(10))[:0]), [])
        self.assertFalse(is_held_out("frame_00004.jpg", 4, 0))
        # A frame sfm added after frame 4 trains, and lies within the span as frame 4 does.
        self.assertFalse(is_held_out("frame_00004_m.jpg", 5, 8))
        self.assertEqual(extrapolated(names([4]), ["frame_00004_m.jpg", "frame_00005.jpg"]), set(names([4])))

    def test_views_beyond_the_training_span_are_extrapolated(self):
        held = names([4, 12, 20])
        self.assertEqual(extrapolated(held, names([5, 6, 13, 19])), set(names([4, 20])))
        self.assertEqual(extrapolated(held, names([0, 30])), set())
        self.assertEqual(extrapolated(held, []), set(held))


if __name__ == "__main__":
    unittest.main()
