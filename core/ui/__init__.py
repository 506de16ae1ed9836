"""The shared Streamlit pieces every page is built from (the only part of core that imports Streamlit).

  load       get_served(task) (core.serving.Served), get_model(task, variant=None): models loaded once per process
  server     the server process's tuning: configure_torch(), page_slot(), release_free_memory(), settle_heap()
  warm       warm_browser(): the frontend loads its element code while the first page computes
  page       task_page(task, try_it, inspect_extra=None): header, weights check, Try it / Inspect / Model card tabs
  widgets    demo_buttons(task, key), show_error(exc), token_html(tokens, values), guarded(fn, ...)
  charts     Altair builders taking DataFrames: line_chart, bar_chart, heatmap, ...; training_curves (a Vega-Lite spec)
  inspector  render_inspector(task, model, input): gradients through time, per parameter, saliency, clipping,
             spectra, gates
  card       render_model_card(task, card, model=None): the Model card tab from a core.modelcard.ModelCard
  pages/     whole pages that are not task pages (Home, Gradient Lab, Plugins, Your data)

Task pages import from here lazily, inside their render(task), so that importing a task never imports Streamlit.
"""
