"""The attribution tables users read.

Interventional credit (:mod:`.tables`) beside the classic rules (:mod:`.classic`), and the
distance of each method to a known truth (:mod:`.evaluation`).
"""
