"""The ledger holds a bounded number of bytes per fill (ADR-0184), measured with tracemalloc
on its real objects: bus messages decoded and applied by the service's dispatcher.

The bound, 1,500 bytes per fill (each fill with its intent's acceptance, entry and two legs):
what the ledger keeps by design is about 1,150 bytes (the fill's record and its ids 220, the
fill index's entries 90, its order's sum 240, the acceptance and its three order ids 400, the
intent's id in the accepted set 100, the fee report 75 or the fill's id among those without
fees 100); a window of ``n`` to ``2n`` fills sees each dict and set double once, which moves
the figure between about 850 and 1,250. The former book (the decoded events and a dict entry
per order and leg) held 2,400 to 2,800 bytes per fill, 3,900 to 4,200 with fee reports.
"""

from __future__ import annotations

import pytest

from .fill_memory import held_per_fill

BOUND = 1_500


@pytest.mark.parametrize("fees", [False, True], ids=["fills", "fills-and-fees"])
def test_bytes_held_per_fill_stay_under_the_bound(fees: bool) -> None:
    held = held_per_fill(5_000, fees=fees)
    assert 0 < held < BOUND, f"{held:.0f} bytes per fill"
