"""Keys of the records exchanged between the ServerApp and the ClientApps.

Both sides import these names, so a renamed key breaks loudly on both.
"""

ARRAYS = "arrays"
METRICS = "metrics"
CONFIG = "config"
SITE = "site"
EXCLUDED = "excluded"
PROFILE = "profile"
MOMENTS = "moments"
# In a moments request: also release the sums of squares (spreads), not centers only.
SPREADS = "spreads"
RELEASE = "release"
STATISTICS = "statistics"
# A query's release: decrypt the final encrypted model, if the site's policy agrees.
DECRYPT_FINAL = "decrypt-final"
ASSESSMENT = "assessment"
FAIRNESS = "fairness"
IMPORTANCE = "importance"
EXPLAIN = "explain"
# Champion / challenger: the champion's arrays beside the challenger's in one evaluate
# message, and the site's metrics of the champion in its reply.
CHAMPION_ARRAYS = "champion-arrays"
CHAMPION_METRICS = "champion-metrics"
CHAMPION_FAIRNESS = "champion-fairness"

NUM_EXAMPLES = "num-examples"
REASON = "reason"
SITE_NAME = "name"
TABLE_VERSION = "table-version"
LABELED_VERSION = "labeled-version"  # -1: no label given at the site yet
EPSILON = "epsilon"
DELTA = "delta"
EPSILON_BUDGET = "epsilon-budget"
# Versions of the site's clean table that erasures purged (JSON list of ints): only
# that versions are gone, never whose rows.
PURGED_VERSIONS = "purged-versions"
AUDIT_HEAD = "audit-head"
STORE_ID = "store-id"

FEATURE_SPEC = "feature-spec"
RUN_ID = "run-id"
SERVER_ROUND = "server-round"
NUM_ROUNDS = "num-rounds"
SEED = "seed"
MODEL = "model"
LOCAL_EPOCHS = "local-epochs"
BATCH_SIZE = "batch-size"
LEARNING_RATE = "learning-rate"
MOMENTUM = "momentum"
MAX_GRAD_NORM = "max-grad-norm"
GRAD_SAMPLE_MODE = "grad-sample-mode"
PROXIMAL_MU = "proximal-mu"
LABEL_QUEUE_SIZE = "label-queue-size"

# Encrypted aggregation (run config ``he``): the round config says so and names the
# federation's key; the global model and a site's update travel as CKKS ciphertexts.
HE = "he"
HE_KEY_ID = "he-key-id"
HE_PARAMS = "he-params"  # the coordinator's CKKS parameters: a site names a mismatch
# Node config (fedlife-site join): the site's bundle, where its secret HE context is.
BUNDLE = "bundle"
# Node config: a folder where the ClientApp records every message the site sends.
EGRESS_LOG = "egress-log"
ENCRYPTED = "encrypted"
CHUNKS = "chunks"
