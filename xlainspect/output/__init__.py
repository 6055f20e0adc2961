"""Stage 5, what a person reads: text tables and JSON (:mod:`.format`), kernel graphs as SVG (:mod:`.render`), the
one-file HTML report (:mod:`.report`) and plots (:mod:`.plots`). Uses every stage below; none uses it.
"""
