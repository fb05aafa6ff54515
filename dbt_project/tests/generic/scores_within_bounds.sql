{% test scores_within_bounds(model) %}
-- Household scores are in range: percentile 0..100, probability 0..1, revenue and CLV not negative.
with

final as (
    select *
    from {{ model }}
    where
        value_percentile not between 0 and 100
        or attrition_probability not between 0 and 1
        or predicted_revenue_12m < 0
        or clv < 0
)

select * from final
{% endtest %}
