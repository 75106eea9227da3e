"""Solutions to the exercises of 02_hard_negative_mining (teachers' copy; load with solutions=True)."""

answer_1 = [7, 8]  # ranks 1-2 skipped; 0.81 >= 0.8; 0.75, 0.70, 0.68 >= 0.665; only two survive (a shortfall)
answer_2 = 0.57  # 0.95 x 0.6
answer_3 = 8  # 3 removed by max_score, then range_min=5 more: F2LLM skips ranks 1-5 only
