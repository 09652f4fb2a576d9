"""Reading BPMN: safe XML parsing, the SpiffWorkflow parser setup, and model lint."""
