"""Storage: the Parquet store and the SQL store behind one interface, committed together.

    Stores        prepare / read / read_arrow / read_sql / staging / commit / close   (stores.py)
    Replacement   what a run hands over for one table                                  (plan.py)
    Ledger        runs, watermarks, files read, store state and the run lock           (ledger.py)

Nothing here imports from the orchestration (``pipeline.*`` top level) or the analyst surface
(``pipeline.analyst``); both use this package.
"""

from pipeline.store.errors import LockLost, LockTimeout, StoreError
from pipeline.store.ledger import Ledger
from pipeline.store.parquet import to_arrow, to_pandas
from pipeline.store.plan import Replacement
from pipeline.store.staging import Staging
from pipeline.store.stores import COMMIT_FAULT_POINTS, FAULT_POINTS, Stores

__all__ = ["COMMIT_FAULT_POINTS", "FAULT_POINTS", "Ledger", "LockLost", "LockTimeout", "Replacement", "Staging",
           "StoreError", "Stores", "to_arrow", "to_pandas"]
