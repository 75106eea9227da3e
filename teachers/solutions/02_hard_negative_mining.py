"""Solutions to the exercises of 02_hard_negative_mining (teachers' copy; load with solutions=True)."""

answer_1 = [7, 8]  # ranks 1-2 skipped; 0.81 >= 0.8; 0.75, 0.70, 0.68 >= 0.665; only two survive (a shortfall)
answer_2 = 0.57  # 0.95 x 0.6
answer_3 = 8  # 3 removed by max_score, then range_min=5 more; the kit's default order skips ranks 1-5 only
answer_4 = 1  # a paraphrase of the positive: the teacher scores it above the positive itself (0.87 against 0.80)

# shown after a right answer (course.check)
explain_1 = (
    "The rule runs in order: skip the top ranks, drop scores at or above 0.8, then drop scores within 5 %"
    " of the positive (0.95 x 0.7 = 0.665); what is left is too short, a shortfall the report counts."
)
explain_2 = (
    "The relative margin keeps a negative only if it scores below 95 % of the positive's score: 0.95 x 0.6 = 0.57."
)
explain_3 = (
    "sentence-transformers filters first (the 3 candidates above 0.8 go) and then skips range_min = 5 of "
    "the survivors, so 8 candidates come before the first negative; skipping retrieval ranks 1-5 first "
    "(the kit's default order) would give 5."
)
explain_4 = (
    "Candidate 1 answers the query as well as the positive does; the teacher scores it even higher than the positive, "
    "so F2LLM's rule (below 0.8 and below 0.95 x the positive's score) drops it, while the three on-topic but wrong "
    "candidates stay: exactly the hard negatives the loss needs."
)
