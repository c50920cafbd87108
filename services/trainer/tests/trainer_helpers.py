"""Constants shared by the trainer tests (imported as services.trainer.tests.trainer_helpers)."""

# 3,000 real reviews, stratified: big enough for stable F1 differences, small enough for seconds per run.
SAMPLE_ROWS = 3000
# A small model: every test run fits in about a second on 2 cores.
SMALL_MODEL = {"n_features": 4096, "ngram_max": 1}
# Strictly ordered on the sample's held-out split (checked in test_trainer_flow): WORSE < SMALL_MODEL < BETTER.
WORSE_MODEL = {"n_features": 1024, "ngram_max": 1, "C": 0.01}
BETTER_MODEL = {"n_features": 65536, "ngram_max": 2}
# Rows of the trainer sample copied into its independent test file: the overlap training must drop and report.
TEST_FILE_OVERLAP = 5
