"""Your own data: read a person's file, propose the recurrent shape that fits it, train it with core's loop, export it.

  parse.py     reading and checking (limits before parsing, delimiter, header, a clear message naming the row)
  propose.py   which shape fits the columns, with a one-sentence reason; checks an overridden choice
  examples.py  small example data sets written by the project itself, one per kind
  task.py      YourDataTask: one core.task.Task for all five shapes (the page and every exported plugin use it)
  build.py     training runs through core.train.fit, within a budget, one at a time per server (TrainQueue)
  export.py    the weights (model.safetensors + card.json) and a ready plugin folder, as zip files

No Streamlit here: the page is core/ui/pages/your_data.py.
"""
