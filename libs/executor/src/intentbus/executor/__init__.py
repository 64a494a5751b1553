"""intentbus executor: BaseExecutor protocol, sizing, runtime, venue registry."""
