{#- The household x cutoff tables (int_household_cutoff_billing, _labels, _interactions and
    fct_household_features) are built in batches of households, one statement per batch, when the
    cutoff grid is large: at `large` (1M households, 36 cutoffs, 33M grid rows) one statement over the
    whole grid sorted or joined tens of millions of rows at once and spilled 8-28 GB past the 3 GB
    memory limit. Each household's rows depend on that household alone, so a batch of households
    gives exactly the rows of the whole build restricted to them, and the batches together the same
    table.

    How: every input the model reads per household carries `where {{ household_batch('household_id') }}`.
    The model's own statement builds batch 0; its post-hook `insert_household_batches()` appends
    batches 1..n-1, each the model's compiled SQL with the batch number swapped in. n is the grid's
    rows over var('household_batch_rows') (1M: a batch's sorts and hash tables fit in the 3 GB limit with
    room), so the small and demo worlds build in one statement as before. Spark shuffles by key
    already and builds in one statement. -#}
{% macro household_batches() -%}
    {{ return(adapter.dispatch('household_batches', 'northstar')()) }}
{%- endmacro %}

{% macro default__household_batches() -%}
    {#- parsing, and unit tests (their inputs are CTEs of a few rows), build in one statement -#}
    {%- if not execute or model.resource_type == 'unit_test' -%}
        {{ return(1) }}
    {%- endif -%}
    {#- compiled before the grid exists (dbt compile, docs, sqlfluff on an empty warehouse): one batch -#}
    {%- set grid = load_relation(ref('int_household_cutoffs')) -%}
    {%- if grid is none -%}
        {{ return(1) }}
    {%- endif -%}
    {%- set grid_rows = run_query('select count(*) from ' ~ grid).columns[0].values()[0] -%}
    {%- set per_batch = var('household_batch_rows', 1000000) | int -%}
    {{ return([1, ((grid_rows + per_batch - 1) // per_batch) | int] | max) }}
{%- endmacro %}

{% macro spark__household_batches() -%}
    {{ return(1) }}
{%- endmacro %}

{#- The filter marker the post-hook swaps: batch 0 of `household_batches()`. -#}
{% macro household_batch_marker(batch) -%}
    = {{ batch }} /* northstar:household-batch */
{%- endmacro %}

{% macro household_batch(column) -%}
    {%- set batches = household_batches() -%}
    {%- if batches > 1 -%}
        {{ hash_bucket(column, batches) }} {{ household_batch_marker(0) }}
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}

{% macro insert_household_batches() -%}
    {%- set batches = household_batches() -%}
    {%- if batches > 1 -%}
        {%- set first = model.compiled_code -%}
        {%- set marker = household_batch_marker(0) -%}
        {%- if marker not in first -%}
            {{ exceptions.raise_compiler_error(
                model.name ~ ": insert_household_batches() needs household_batch() on the model's inputs") }}
        {%- endif -%}
        {%- for batch in range(1, batches) -%}
            {%- call statement('household_batch_' ~ batch) -%}
                insert into {{ this }}
                select * from (
                    {{ first | replace(marker, household_batch_marker(batch)) }}
                ) as household_batch
            {%- endcall -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
