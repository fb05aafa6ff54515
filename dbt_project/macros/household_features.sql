{#- The incremental build of fct_household_features, step one (its pre-hook): delete the rows a
    night must rebuild or drop, so the build then adds exactly the cutoff-grid rows the table lacks.
    Stale: a cutoff whose label window was still open (a newly billed month may complete it), a cutoff
    that left the grid (feature_cutoff_months moved on), a household gone from the CRM, and every row
    of a household whose CRM state (int_household_crm_states.crm_state_key) is not the one its rows
    were built from. A failed build after the delete heals itself: the next build adds what is missing.
    Nothing on a full build or a --full-refresh (the table is rebuilt whole).
    Engines without row deletes (Spark on plain Parquet tables) rebuild the table whole instead
    (household_features_materialization in macros/cross_db/incremental.sql): the same rows. -#}
{% macro delete_stale_household_features() -%}
    {{ return(adapter.dispatch('delete_stale_household_features', 'northstar')()) }}
{%- endmacro %}

{% macro default__delete_stale_household_features() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as built
        where
            not built.is_label_window_complete
            or built.cutoff_on not in (select distinct grid.cutoff_on from {{ ref('int_household_cutoffs') }} as grid)
            or not exists (
                select 1
                from {{ ref('int_household_crm_states') }} as states
                where states.household_id = built.household_id and states.crm_state_key = built.crm_state_key
            )
    {%- endif -%}
{%- endmacro %}
