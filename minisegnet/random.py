"""The library's one random number generator (weight initialisation, data shuffling).

``msn.manual_seed(s)`` makes every run that follows reproducible.
"""
import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed):
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def generator():
    return _generator


def get_state():
    return _generator.bit_generator.state


def set_state(state):
    _generator.bit_generator.state = state
