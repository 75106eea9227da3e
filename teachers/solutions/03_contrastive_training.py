"""Solutions to the exercises of 03_contrastive_training (teachers' copy; load with solutions=True)."""

answer_1 = 1.0986  # -log(e^10 / (3 e^10)) = log 3
answer_2 = 511  # 16 x 32 = 512 positives in the global batch, one is the query's own
answer_3 = 0.9  # 0.6e9 params x 12 bytes / 8 GPUs = 0.9 GB
answer_4 = 0.598  # log(1 + e^{-0.1/0.5}) = log(1 + e^{-0.2}); up from 0.127

# shown after a right answer (course.check)
explain_1 = (
    "With equal logits the softmax gives each of the 3 documents 1/3, so the loss is -log(1/3) = log 3: "
    "where a model that knows nothing starts."
)
explain_2 = (
    "The in-batch loss gathers every GPU's positives: 16 x 32 = 512 documents, of which one is the "
    "query's own positive and 511 are negatives."
)
explain_3 = (
    "AdamW in mixed precision keeps about 12 bytes per parameter beyond the weights (fp32 master copy, "
    "two moments); ZeRO-2 splits them over the 8 GPUs."
)
explain_4 = (
    "At tau = 0.5 the logits are 1.8 and 1.6 instead of 18 and 16: the gap of 0.2 leaves the softmax barely "
    "preferring the positive, so the loss rises to log(1 + e^-0.2) = 0.598 although the positive is ranked first. "
    "A small tau turns the same cosine gap into a large logit gap: the loss is small once the positive wins, and "
    "what is left comes from the negatives that score close to it."
)
