"""Solutions to the exercises of 00_overview (teachers' copy; load with solutions=True)."""

answer_1 = (24, 7)  # mined per retrieval query, sampled per micro-batch (docs/recipe.md §1, §1a)
answer_2 = 20.0  # scale = 1 / temperature = 1 / 0.05
answer_3 = 0  # "How do I reverse a list in Python?" (cosine 0.76; the answer sentence is 0.58)
