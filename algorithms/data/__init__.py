"""Tasks and data for meta-learning: where episodes come from.

    train, test = task_sources("digits", way=5, shot=1, query=15)
    batch = train.sample(meta_batch=4, generator=episode_generator(seed, "train", it))

Three task families, one interface (`TaskSource.sample(meta_batch, generator) -> TaskBatch`):
the sinusoid regression of Finn et al. 2017, N-way K-shot Q-query episodes from scikit-learn's
bundled digits, and Omniglot from a local folder. Nothing is downloaded; a missing dataset is a
`DatasetNotFoundError` that says where to put it.
"""

from .episodes import ClassPool, Episodes
from .errors import DataError, DatasetNotFoundError
from .tasks import (DATASETS, SinusoidTasks, TaskSource, episode_generator, episode_seed,
                    task_sources)

__all__ = ["DATASETS", "ClassPool", "DataError", "DatasetNotFoundError", "Episodes",
           "SinusoidTasks", "TaskSource", "episode_generator", "episode_seed", "task_sources"]
