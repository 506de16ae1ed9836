"""Your own data: read a person's file, propose the recurrent shape that fits it, train it with core's loop, export it.

  parse.py     reading and checking (limits before parsing, encoding, delimiter, header, a message naming the row)
  formats.py   the readers the content picks: CoNLL token-per-line files, JSON lines / arrays, Excel .xlsx sheets
  choice.py    what to learn (Choice), how a text becomes steps, whether a table's rows fit a choice
  propose.py   which shape fits the columns (forecasting first), with a one-sentence reason; checks a choice
  forecast.py  time series: detection, the season, the time-ordered split, ForecastTask and its naive baselines
  regression.py  a number from a sequence: RegressionTask, scored beside always answering the training mean
  examples.py  small example data sets written by the project itself, one per kind
  task.py      YourDataTask: one core.task.Task for all five shapes, scores beside their baselines (the page
               and every exported plugin use it)
  kinds.py     the task for a spec, by its kind (sequence, forecast, regression)
  build.py     training runs through core.train.fit, within a budget, one at a time per server (TrainQueue)
  export.py    the weights (model.safetensors + card.json) and a ready plugin folder, as zip files

No Streamlit here: the page is core/ui/pages/your_data.py.
"""
