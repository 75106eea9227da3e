"""Solutions to the exercises of 06_beyond_f2llm (teachers' copy; load with solutions=True)."""

answer_1 = 1 / 6  # dims 64, 32, 16, 8: 16 is the third (n = 3), sqrt(64 / 16) = 2, so 1 / (3 x 2)
answer_2 = 16  # 4 positives + 4 x 3 hard negatives of the batch
answer_3 = 16  # 8 chunks embedded twice: without a graph, then with one
