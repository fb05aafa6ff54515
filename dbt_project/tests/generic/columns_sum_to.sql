{#- Every row's parts add up to its total, e.g. the age buckets (or the reason-code counts) of a
    recon summary row to its open breaks. Returns the rows that do not. -#}
{% test columns_sum_to(model, total, parts) %}

with

final as (
    select
        {{ total }} as total_value,
        {{ parts | join(' + ') }} as parts_value
    from {{ model }}
    where {{ total }} != {{ parts | join(' + ') }}
)

select * from final

{% endtest %}
