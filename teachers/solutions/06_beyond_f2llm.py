"""Solutions to the exercises of 06_beyond_f2llm (teachers' copy; load with solutions=True)."""

answer_1 = 1 / 6  # dims 64, 32, 16, 8: 16 is the third (n = 3), sqrt(64 / 16) = 2, so 1 / (3 x 2)
answer_2 = 16  # 4 positives + 4 x 3 hard negatives of the batch
answer_3 = 16  # 8 chunks embedded twice: without a graph, then with one
answer_4 = 1  # only 0.85 is more than 0.1 above the positive 0.70

# shown after a right answer (course.check)
explain_1 = (
    "Counting the dimensions from the largest (64, 32, 16, 8), 16 is the third: weight 1 / (3 x sqrt(64 / 16)) = 1/6."
)
explain_2 = (
    "The single softmax puts every document of the batch in one denominator: 4 positives and 4 x 3 hard negatives."
)
explain_3 = (
    "Gradient caching embeds each of the 8 chunks twice: once without a graph to get every embedding for "
    "the loss, then again with one to push the cached gradients back."
)
explain_4 = (
    "The bar is the positive's score plus the margin, 0.80: 0.85 is masked; 0.79 and 0.75 score above the positive "
    "but within the margin, so they stay as hard negatives (the rule masks only what is clearly better)."
)
