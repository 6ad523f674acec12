"""The generated `dockgate.v1` contract (`make proto`); never edited by hand."""
