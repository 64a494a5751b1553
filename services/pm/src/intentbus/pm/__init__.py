"""The intentbus portfolio manager: feed, tick loop, planners and backtest."""
