"""Progress bars that appear only on a terminal and only for work longer than a second."""
from tqdm.auto import tqdm


def progress(iterable=None, desc=None, total=None, **kwargs):
    """tqdm with a one-second delay, hidden when stderr is not a terminal."""
    return tqdm(iterable, desc=desc, total=total, delay=1.0, disable=None, leave=False, **kwargs)
