"""Solutions to the exercises of 01_data_unification (teachers' copy; load with solutions=True)."""

answer_1 = 4  # scores 3.0 and 5.0 reach the threshold; each pair is used in both directions
answer_2 = [0, 2]  # case and whitespace variants; a missing full stop or "2" for "two" is another text
answer_3 = 0.83  # 4.9M of 5.9M (the "6M" of the paper, rounded)
