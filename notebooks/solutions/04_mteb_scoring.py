"""Solutions to the exercises of 04_mteb_scoring (teachers' copy; load with solutions=True)."""

import math

answer_1 = 160 / 3  # retrieval (50 + 30) / 2 = 40, STS 80, clustering 40 -> (40 + 80 + 40) / 3 = 53.33
answer_2 = (1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3))  # = 0.877
answer_3 = "Instruct: Retrieve semantically similar text.\nQuery: A cat sat."
answer_4 = 1.96 * math.sqrt(0.56 * 0.44 / 50)  # = 0.138: 50 rows cannot tell 0.55 from 0.57
