"""Defaults of a query that callers show before any index is opened (``soundsift --help`` prints
them), in a module that imports nothing: engine.zeroshot and engine.query, which use them, bring
numpy, sqlalchemy and the decoders along."""
from __future__ import annotations

#: the zero-shot prompt a label is put into (engine.zeroshot)
DEFAULT_TEMPLATE = "This is a sound of {label}."
#: a class's text→audio query when a labelled set is evaluated (`soundsift eval zeroshot`)
LABEL_QUERY_TEMPLATE = "{label}"
#: how much each excluded text's cosine is taken from a segment's score (search_text ``exclude``)
EXCLUDE_WEIGHT = 0.5
