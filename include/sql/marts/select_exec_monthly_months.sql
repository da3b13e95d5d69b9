-- Which of the given months already have a row in marts.exec_monthly (refresh_marts recomputes those after their previous month changed).
-- params: months ARRAY<DATE>
SELECT DISTINCT month
FROM marts.exec_monthly
WHERE month IN UNNEST(@months)
ORDER BY month
