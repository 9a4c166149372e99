"""Second-price auctions: the highest bid wins and pays the second-highest.

From one bidder's side only the highest competing bid matters: it wins when its bid is strictly
above that bid (ties go to the competitor) and then pays exactly that bid. Bidding one's true
value is then optimal without a budget; with a budget, shading the bid is how to spend it well.
"""

from __future__ import annotations

import numpy as np


def second_price(bids: np.ndarray, competing_bid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(won mask, price paid per auction: the competing bid where won, else 0)."""
    won = bids > competing_bid
    return won, np.where(won, competing_bid, 0.0)
