"""What ops staff use to see stuck cases and put them right."""
