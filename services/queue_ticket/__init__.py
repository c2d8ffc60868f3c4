"""Queue tickets (xếp hàng, lấy số) service."""
