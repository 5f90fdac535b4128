"""Search spaces: architectures, their string form, YAML spaces, and the model builder.

Importing this package does not import torch; ``search_spaces.builder`` does.
"""
from search_spaces.arch import Architecture
from search_spaces.registry import list_spaces, load_space
from search_spaces.space import CategoricalSpace, SearchSpace

__all__ = ["Architecture", "CategoricalSpace", "SearchSpace", "list_spaces", "load_space"]
