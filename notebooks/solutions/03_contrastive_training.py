"""Solutions to the exercises of 03_contrastive_training (teachers' copy; load with solutions=True)."""

answer_1 = 1.0986  # -log(e^10 / (3 e^10)) = log 3
answer_2 = 511  # 16 x 32 = 512 positives in the global batch, one is the query's own
answer_3 = 0.9  # 0.6e9 params x 12 bytes / 8 GPUs = 0.9 GB
